#!/usr/bin/perl
# Seals a message with Mail::DKIM::ARC::Signer (Debian: libmail-dkim-perl), hop after hop, for
# tests/interop/arc_interop_test.ts.
#
# Usage: perl mail_dkim_arc_seal.pl JOB.json
# JOB.json: { "message": BASE64, "records": { NAME: TXT },
#             "hops": [ { "domain", "selector", "key": PEM (RSA), "authservId" } ] }
# Each hop verifies the chain that is there with Mail::DKIM::ARC::Verifier (keys from
# "records", no network), writes its own Authentication-Results with that arc= result (the
# signer takes cv= from it: Chain => "ar"), then prepends the new ARC set.
# Prints { "message": BASE64 } or { "error": TEXT }.
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

my $input = do { local ( @ARGV, $/ ) = ( $ARGV[0] ); <> };
my $job = JSON::PP->new->decode($input);
my %table;
for my $name ( keys %{ $job->{records} } ) {
    my $text = $job->{records}{$name};
    utf8::encode($text);
    ( my $key = lc $name ) =~ s/\.\z//;
    $table{$key} = $text;
}
{
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

sub feed {
    my ( $obj, $message ) = @_;
    $obj->PRINT($message);
    $obj->CLOSE;
}

my $result = eval {
    my $message = decode_base64( $job->{message} );
    for my $hop ( @{ $job->{hops} } ) {
        my $verifier = Mail::DKIM::ARC::Verifier->new;
        feed( $verifier, $message );
        my $cv = $verifier->result;
        $message = "Authentication-Results: $hop->{authservId}; arc=$cv\015\012" . $message;
        my $rsa = Crypt::OpenSSL::RSA->new_private_key( $hop->{key} );
        my $signer = Mail::DKIM::ARC::Signer->new(
            Algorithm => 'rsa-sha256',
            Domain    => $hop->{domain},
            Selector  => $hop->{selector},
            SrvId     => $hop->{authservId},
            Key       => Mail::DKIM::PrivateKey->load( Cork => $rsa ),
            Chain     => 'ar',
        );
        feed( $signer, $message );
        die "not sealed: " . ( $signer->{details} // $signer->result ) . "\n"
          unless $signer->as_string;
        $message = $signer->as_string . $message;
    }
    { message => encode_base64( $message, '' ) };
} || { error => "$@" };
print JSON::PP->new->canonical->encode($result), "\n";
