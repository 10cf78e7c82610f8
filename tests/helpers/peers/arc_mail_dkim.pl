#!/usr/bin/perl
# Seals and verifies ARC chains with Mail::DKIM (Debian: libmail-dkim-perl), for
# tests/helpers/arc_peers.ts and tests/testdata/arc/make_fixtures.py.
#
# Usage: perl arc_mail_dkim.pl < JOB.json
# JOB.json: { "nameserver": "IP@PORT" } or { "records": { NAME: TXT } } (where keys come from:
#   a DNS server through Net::DNS, or this table with no network), and
#   "jobs": [ { "op": "verify", "message": BASE64 }
#           | { "op": "seal", "message": BASE64, "hops": [ { "domain", "selector",
#               "key": PEM (RSA: Mail::DKIM has no Ed25519), "authservId",
#               "chain": "none"|"pass"|"fail" (optional), "timestamp" (optional),
#               "subjectTag" (optional) } ] } ]
# A verify job gives { "result", "detail" }. A seal job runs its hops in order: each takes cv=
# from "chain", or else from verifying the chain that is there with Mail::DKIM::ARC::Verifier,
# writes its own Authentication-Results with that arc= result (the signer reads it: Chain =>
# "ar" when verified), tags the Subject as a list would when asked, then prepends the new ARC
# set; it gives { "sealed": BASE64 }. A job that dies gives { "error" }.
# Prints { "results": [ ... ] }.
use strict;
use warnings;

use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);
use Mail::DKIM::ARC::Signer;
use Mail::DKIM::ARC::Verifier;
use Mail::DKIM::PrivateKey;
use Mail::DKIM::DNS;
use Net::DNS;
use Crypt::OpenSSL::RSA;

my $TXT_STRING_MAX = 255;

my $request = JSON::PP->new->decode( do { local $/; <STDIN> } );

if ( defined $request->{nameserver} ) {
    my ( $ip, $port ) = $request->{nameserver} =~ /\A\[?([^\]@]+)\]?@(\d+)\z/
      or die "bad nameserver\n";
    my $resolver = Net::DNS::Resolver->new(
        nameservers => [$ip],
        port        => $port,
        retry       => 1,
        udp_timeout => 5,
        tcp_timeout => 5,
        searchlist  => [],
        defnames    => 0,
        dnsrch      => 0,
    );
    $resolver->udppacketsize(1232);
    Mail::DKIM::DNS::resolver($resolver);
}
else {
    my %table;
    for my $name ( keys %{ $request->{records} } ) {
        my $text = $request->{records}{$name};
        utf8::encode($text);
        ( my $key = lc $name ) =~ s/\.\z//;
        $table{$key} = $text;
    }
    no warnings 'redefine';
    # Every key lookup answered from the table; a missing name reads as NXDOMAIN.
    *Mail::DKIM::DNS::query = sub {
        my ( $domain, $type ) = @_;
        ( my $key = lc $domain ) =~ s/\.\z//;
        my $text = $table{$key};
        if ( !defined $text || uc $type ne 'TXT' ) {
            $@ = 'NXDOMAIN';
            return;
        }
        my @strings = unpack( "(a$TXT_STRING_MAX)*", $text );
        $@ = 'NOERROR';
        return Net::DNS::RR->new(
            owner   => $domain,
            type    => 'TXT',
            ttl     => 300,
            txtdata => \@strings
        );
    };
}

sub crlf { my ($m) = @_; $m =~ s/\r?\n/\r\n/g; return $m; }

sub feed {
    my ( $obj, $message ) = @_;
    $obj->PRINT($message);
    $obj->CLOSE;
}

sub verify_job {
    my ($job) = @_;
    my $v = Mail::DKIM::ARC::Verifier->new();
    feed( $v, crlf( decode_base64( $job->{message} ) ) );
    return { result => $v->result, detail => $v->result_detail // '' };
}

sub seal_job {
    my ($job) = @_;
    my $message = crlf( decode_base64( $job->{message} ) );
    for my $hop ( @{ $job->{hops} } ) {
        my $chain = $hop->{chain};
        my $cv    = $chain;
        if ( !defined $chain ) {
            my $verifier = Mail::DKIM::ARC::Verifier->new;
            feed( $verifier, $message );
            ( $cv, $chain ) = ( $verifier->result, 'ar' );
        }
        if ( $hop->{subjectTag} ) {
            # A mailing list's change, made after verifying and before sealing.
            $message =~ s/\015\012Subject: /\015\012Subject: $hop->{subjectTag} /;
        }
        $message = "Authentication-Results: $hop->{authservId}; arc=$cv\015\012" . $message;
        my $rsa = Crypt::OpenSSL::RSA->new_private_key( $hop->{key} );
        my $signer = Mail::DKIM::ARC::Signer->new(
            Algorithm => 'rsa-sha256',
            Domain    => $hop->{domain},
            Selector  => $hop->{selector},
            SrvId     => $hop->{authservId},
            Key       => Mail::DKIM::PrivateKey->load( Cork => $rsa ),
            Chain     => $chain,
            ( defined $hop->{timestamp} ? ( Timestamp => $hop->{timestamp} ) : () ),
        );
        feed( $signer, $message );
        die "Mail::DKIM did not seal: "
          . ( $signer->{details} // $signer->result // 'no result' ) . "\n"
          unless ( $signer->result // '' ) eq 'sealed' && $signer->as_string;
        $message = $signer->as_string . $message;
    }
    return { sealed => encode_base64( $message, '' ) };
}

my @results;
for my $job ( @{ $request->{jobs} } ) {
    my $r = eval { $job->{op} eq 'seal' ? seal_job($job) : verify_job($job) };
    push @results, $r // { error => "$@" };
}
print JSON::PP->new->canonical->encode( { results => \@results } );
