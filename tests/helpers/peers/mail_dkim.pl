#!/usr/bin/perl
# Drives Mail::DKIM (Debian: libmail-dkim-perl) for tests/helpers/peers.ts.
#
# Usage: perl mail_dkim.pl JOBS.json
# JOBS.json: { "keys": { "records": { NAME: TXT } } | { "nameserver": "IP@PORT" },
#              "dnsTimeout": SECONDS,
#              "jobs": [ { "op": "verify", "message": BASE64 }
#                      | { "op": "sign", "message": BASE64, "domain", "selector", "key": PEM,
#                          "algorithm", "canonicalization", "headers": [..] | null,
#                          "length": BOOL } ] }
# Prints one JSON object: { "version": ..., "results": [ { "verdicts": [...] }
#                                                      | { "signature": BASE64 }
#                                                      | { "error": TEXT } ] }
# Keys never come from the internet: with "records" the DNS lookup is answered from the job
# file; with "nameserver" Net::DNS asks only that server.
use strict;
use warnings;

use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);
use Mail::DKIM 0.40;
use Mail::DKIM::Verifier;
use Mail::DKIM::Signer;
use Mail::DKIM::Signature;
use Mail::DKIM::PrivateKey;
use Mail::DKIM::DNS;
use Net::DNS;
use Crypt::OpenSSL::RSA;

# One DNS TXT character-string holds at most 255 bytes (RFC 1035 section 3.3); Mail::DKIM joins
# the strings of a record, so a long key must arrive split as a real DNS answer splits it.
my $TXT_STRING_MAX = 255;

my ($jobs_path) = @ARGV;
defined $jobs_path or die "usage: mail_dkim.pl JOBS.json\n";
my $input = do {
    open my $fh, '<:raw', $jobs_path or die "cannot read $jobs_path: $!\n";
    local $/;
    <$fh>;
};
my $request = JSON::PP->new->decode($input);
my $keys    = $request->{keys} || {};
my $timeout = $request->{dnsTimeout} || 5;
$Mail::DKIM::DNS::TIMEOUT = $timeout;

if ( my $records = $keys->{records} ) {
    my %table;
    for my $name ( keys %$records ) {
        my $text = $records->{$name};
        utf8::encode($text);
        ( my $key = lc $name ) =~ s/\.\z//;
        $table{$key} = $text;
    }
    no warnings 'redefine';
    # Mail::DKIM::DNS::query_async calls query() by name, so replacing it answers every key
    # lookup (PublicKey and policy) from the table; a missing name reads as NXDOMAIN.
    *Mail::DKIM::DNS::query = sub {
        my ( $domain, $type ) = @_;
        ( my $key = lc $domain ) =~ s/\.\z//;
        my $text = $table{$key};
        if ( !defined $text || uc $type ne 'TXT' ) {
            $@ = 'NXDOMAIN';
            return;
        }
        my @strings = $text eq '' ? ('') : unpack( "(a$TXT_STRING_MAX)*", $text );
        $@ = 'NOERROR';
        return Net::DNS::RR->new(
            owner   => $domain,
            type    => 'TXT',
            ttl     => 300,
            txtdata => \@strings
        );
    };
}
elsif ( my $ns = $keys->{nameserver} ) {
    my ( $ip, $port ) = $ns =~ /\A\[?([^\]@]+)\]?(?:@(\d+))?\z/
      or die "bad nameserver \"$ns\": expected IP\@PORT\n";
    my $resolver = Net::DNS::Resolver->new(
        nameservers => [$ip],
        port        => $port || 53,
        recurse     => 1,
        retry       => 1,
        udp_timeout => $timeout,
        tcp_timeout => $timeout,
        searchlist  => [],
        defnames    => 0,
        dnsrch      => 0,
    );
    # EDNS0 payload size of DNS Flag Day 2020: big enough for a 4096-bit key record in UDP.
    $resolver->udppacketsize(1232);
    Mail::DKIM::DNS::resolver($resolver);
}
else {
    die "keys must have \"records\" or \"nameserver\"\n";
}

sub verify_job {
    my ($job)    = @_;
    my $message  = decode_base64( $job->{message} );
    my $verifier = Mail::DKIM::Verifier->new();
    $verifier->PRINT($message);
    $verifier->CLOSE;
    my @verdicts;
    for my $sig ( $verifier->signatures ) {
        my %verdict = (
            result => $sig->result        // 'none',
            detail => $sig->result_detail // '',
        );
        # Signatures that failed to parse may lack tags; report only what the peer has.
        for my $field (qw(domain selector algorithm)) {
            my $value = eval { $sig->$field };
            $verdict{$field} = $value if defined $value && $value ne '';
        }
        push @verdicts, \%verdict;
    }
    return { verdicts => \@verdicts };
}

sub sign_job {
    my ($job)     = @_;
    my $message   = decode_base64( $job->{message} );
    my $algorithm = $job->{algorithm};
    my $key;
    if ( $algorithm =~ /\Arsa-/ ) {
        # Load the PEM ourselves: Mail::DKIM's own loader wraps any key as PKCS#1, which
        # rejects the PKCS#8 keys OpenSSL 3 writes by default.
        my $rsa = Crypt::OpenSSL::RSA->new_private_key( $job->{key} );
        $key = Mail::DKIM::PrivateKey->load( Cork => $rsa );
    }
    else {
        # Newer Mail::DKIM (1.20230630+) loads Ed25519 keys itself; older ones die below with
        # "unsupported algorithm", which is the answer the caller needs.
        my $data = $job->{key};
        $data =~ s/-----[^-]+-----//g;
        $data =~ s/\s+//g;
        $key = Mail::DKIM::PrivateKey->load( Data => $data, Type => 'ed25519' );
    }
    my $headers = $job->{headers};
    my $new_signature = sub {
        my ($signer) = @_;
        return Mail::DKIM::Signature->new(
            Algorithm => $algorithm,
            Method    => $job->{canonicalization},
            Headers   => defined $headers ? join( ':', @$headers ) : $signer->headers,
            Domain    => $job->{domain},
            Selector  => $job->{selector},
            Key       => $key,
        );
    };
    my $sign = sub {
        my ($length) = @_;
        my $signer = Mail::DKIM::Signer->new(
            Policy => sub {
                my ($signer) = @_;
                my $signature = $new_signature->($signer);
                $signature->body_count($length) if defined $length;
                $signer->add_signature($signature);
                return;
            },
        );
        $signer->PRINT($message);
        $signer->CLOSE;
        return $signer;
    };
    my $signer = $sign->(undef);
    if ( $job->{length} ) {
        # Mail::DKIM has no "sign with l=" switch; measure the canonical body it hashed, then
        # sign again with that count, as its body_count() documentation suggests.
        my $algo  = $signer->{algorithms}[0];
        my $canon = $algo->{body_canon} || $algo->{canon};
        $signer = $sign->( $canon->body_count );
    }
    my $signature = $signer->signature
      or die "Mail::DKIM produced no signature\n";
    return { signature => encode_base64( $signature->as_string . "\015\012", '' ) };
}

my @results;
for my $job ( @{ $request->{jobs} } ) {
    my $result = eval {
        local $SIG{__DIE__};
        $job->{op} eq 'verify' ? verify_job($job)
          : $job->{op} eq 'sign' ? sign_job($job)
          :                        die "unknown op \"$job->{op}\"\n";
    };
    if ( !$result ) {
        my $error = $@ || 'unknown error';
        chomp $error;
        $result = { error => $error };
    }
    push @results, $result;
}

binmode STDOUT, ':raw';
print JSON::PP->new->canonical->encode(
    { version => "Mail::DKIM $Mail::DKIM::VERSION", results => \@results } );
