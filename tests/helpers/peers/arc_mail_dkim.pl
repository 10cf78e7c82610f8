#!/usr/bin/perl
# Verifies and seals ARC chains with Mail::DKIM (Debian: libmail-dkim-perl) for
# tests/helpers/arc_peers.ts.
#
# Usage: perl arc_mail_dkim.pl < JOB.json
# JOB.json: { "nameserver": "IP@PORT",
#             "jobs": [ { "op": "verify", "message": BASE64 }
#                     | { "op": "seal", "message": BASE64, "domain", "selector", "keyFile",
#                         "srvId", "chain": "none"|"pass"|"fail", "timestamp" } ] }
# Prints { "results": [ { "result", "detail" } | { "sealed": BASE64 } | { "error" } ] }.
# Keys come only from the named server (Net::DNS).
use strict;
use warnings;

use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);
use Mail::DKIM::ARC::Verifier;
use Mail::DKIM::ARC::Signer;
use Mail::DKIM::DNS;
use Net::DNS;

my $request = JSON::PP->new->decode( do { local $/; <STDIN> } );
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

sub crlf { my ($m) = @_; $m =~ s/\r?\n/\r\n/g; return $m; }

sub verify_job {
    my ($job) = @_;
    my $v = Mail::DKIM::ARC::Verifier->new();
    $v->PRINT( crlf( decode_base64( $job->{message} ) ) );
    $v->CLOSE;
    return { result => $v->result, detail => $v->result_detail // '' };
}

sub seal_job {
    my ($job) = @_;
    my $s = Mail::DKIM::ARC::Signer->new(
        Algorithm => 'rsa-sha256',
        Domain    => $job->{domain},
        Selector  => $job->{selector},
        SrvId     => $job->{srvId},
        KeyFile   => $job->{keyFile},
        Chain     => $job->{chain},
        Timestamp => $job->{timestamp},
    );
    my $message = crlf( decode_base64( $job->{message} ) );
    $s->PRINT($message);
    $s->CLOSE;
    die "Mail::DKIM did not seal: " . ( $s->result // 'no result' ) . "\n"
      unless ( $s->result // '' ) eq 'sealed';
    my $head = join '', map { crlf("$_\n") } $s->as_strings;
    return { sealed => encode_base64( $head . $message, '' ) };
}

my @results;
for my $job ( @{ $request->{jobs} } ) {
    my $r = eval { $job->{op} eq 'seal' ? seal_job($job) : verify_job($job) };
    push @results, $r // { error => "$@" };
}
print JSON::PP->new->canonical->encode( { results => \@results } );
