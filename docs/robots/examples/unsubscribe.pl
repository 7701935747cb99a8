#!/usr/bin/perl
# unsubscribe.pl - a mailing list's unsubscribe address (RFC 2369
# "List-Unsubscribe: <mailto:list-unsubscribe@example.com>", the mail
# counterpart of RFC 8058's one-click unsubscribe), in Perl with core
# modules only.
#
# A mail is an unsubscribe request when it was sent to an address whose
# local part is "unsubscribe" or ends in "-unsubscribe" (list-unsubscribe@,
# news-unsubscribe@), or has the extension "unsubscribe" (news+unsubscribe@),
# or when its subject or its first body line is "unsubscribe". For a request
# it
#   1. takes the sender's address: the envelope sender (SENDER), or the
#      From address when run by hand without SENDER;
#   2. adds it, lower-cased, to DIR/unsubscribed.txt (one address a line,
#      never twice; the file is locked while it is changed);
#   3. prints, for mailrobot's "actions" output mode, a set_state action
#      "unsubscribed:<address>" = "1" (the "@" written as ":", other
#      characters outside A-Z a-z 0-9 . _ : - as "_") and a reply confirming
#      it (docs/robots/actions.md).
# A mail with a null sender (SENDER empty: a bounce, a delivery report) is
# never acted on and never answered: the script prints an empty action list
# and exits 0. Other
# mail that is not a request gets no actions at all. Mail that must not be
# answered (RFC 3834: autoreplies, mailing lists, bulk) is unsubscribed
# without a reply.
#
# DIR is the first argument, or $HOME without one. Exits 65 when there is
# no usable sender address, 75 (try again later) when the list cannot be
# written.
#
# As a mailrobot exec robot (runs as the exec user in
# <exec_directory>/list-unsubscribe, which is its HOME):
#
#   {"name": "list-unsubscribe", "kind": "exec",
#    "exec": {"command": "/usr/local/bin/unsubscribe.pl", "output": "actions"}}
#
# As a classic Postfix alias (/etc/aliases, then run newaliases):
#
#   list-unsubscribe: "|/usr/local/bin/unsubscribe.pl /var/lib/mylist"
#
# local(8) does not set HOME for alias deliveries, so name the directory
# there; it must be writable by the user the command runs as (default_privs,
# or the owner of the aliases file). Under local(8) the JSON printed goes
# nowhere - the state and the confirmation are the mailrobot part;
# unsubscribed.txt is kept either way.

use strict;
use warnings;
use Encode ();
use Fcntl qw(:flock O_RDWR O_CREAT SEEK_END);
use JSON::PP ();

use constant { EX_DATAERR => 65, EX_TEMPFAIL => 75, LOCK_WAIT => 10 };

sub fail {
    my ($status, $why) = @_;
    print STDERR "unsubscribe.pl: $why\n";
    exit $status;
}

umask 077;
binmode STDIN;
my $raw = do { local $/; <STDIN> } // '';

# A bounce (null sender) is never answered, nor taken for a request. (An
# empty action list: mailrobot takes empty output for invalid JSON.)
if (defined $ENV{SENDER} && ($ENV{SENDER} eq '' || $ENV{SENDER} =~ /^mailer-daemon(@|$)/i)) {
    print qq({"actions": []}\n);
    exit 0;
}

my $dir = @ARGV ? $ARGV[0] : ($ENV{HOME} // '');
fail(EX_TEMPFAIL, 'no directory: give one as the first argument') if $dir eq '';

# The header section (after the "From sender date" line local(8) and
# mailrobot both put first), continuation lines joined, and the body.
$raw =~ s/\AFrom [^\n]*\n//;
my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
$head //= '';
$body //= '';
$head =~ s/\r?\n[ \t]+/ /g;
my %field;
for my $line (split /\r?\n/, $head) {
    my ($name, $value) = $line =~ /^([!-9;-~]+):[ \t]*(.*?)\s*$/ or next;
    $field{lc $name} //= $value;
}

sub decoded {
    my ($value) = @_;
    my $text = eval { Encode::decode('MIME-Header', $value) };
    return defined $text ? $text : $value;
}

# Is this an unsubscribe request?
my ($to_local) = lc($ENV{RECIPIENT} // $ENV{LOCAL} // '') =~ /^([^@]*)/;
my $extension = lc($ENV{EXTENSION} // '');
(my $base = $to_local) =~ s/\+.*//;
my ($first_line) = $body =~ /^\s*([^\r\n]*)/;
my $request = $base =~ /(?:^|-)unsubscribe$/ || $extension eq 'unsubscribe'
    || decoded($field{subject} // '') =~ /^\s*unsubscribe\s*$/i
    || ($first_line // '') =~ /^unsubscribe\s*$/i;
unless ($request) {
    print STDERR "unsubscribe.pl: not an unsubscribe request\n";
    print qq({"actions": []}\n);
    exit 0;
}

# Whom to unsubscribe.
my $address = $ENV{SENDER};
if (!defined $address) {
    my $from = $field{from} // '';
    ($address) = $from =~ /<([^<>]*)>/;
    $address //= $from;
}
$address =~ s/^\s+|\s+$//g;
$address = lc $address;
fail(EX_DATAERR, 'no usable sender address')
    unless $address =~ /^[^\s@<>()\[\]\\,;:"]+\@[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/;

# Add it to the list, under a lock: deliveries may run at once.
my $list = "$dir/unsubscribed.txt";
sysopen(my $fh, $list, O_RDWR | O_CREAT, 0600) or fail(EX_TEMPFAIL, "cannot open $list: $!");
my $locked = eval {
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm LOCK_WAIT;
    flock($fh, LOCK_EX) or die "flock: $!\n";
    alarm 0;
    1;
};
alarm 0;
fail(EX_TEMPFAIL, "cannot lock $list: " . ($@ || 'unknown error')) unless $locked;
my $already = 0;
while (my $line = <$fh>) {
    chomp $line;
    if ($line eq $address) { $already = 1; last }
}
unless ($already) {
    seek($fh, 0, SEEK_END) or fail(EX_TEMPFAIL, "cannot seek $list: $!");
    print {$fh} "$address\n" or fail(EX_TEMPFAIL, "cannot write $list: $!");
}
close($fh) or fail(EX_TEMPFAIL, "cannot write $list: $!");
print STDERR "unsubscribe.pl: $address ", ($already ? 'was already' : 'is now'), " unsubscribed\n";

# The mailrobot part (docs/robots/actions.md). State keys are 1 to 200 of
# A-Z a-z 0-9 . _ : - ; a longer address is named by its SHA-256.
(my $key = $address) =~ s/\@/:/;
$key =~ s/[^A-Za-z0-9._:-]/_/g;
if (length($key) > 200 - length('unsubscribed:')) {
    require Digest::SHA;
    $key = 'sha256:' . Digest::SHA::sha256_hex($address);
}
my @actions = ({type => 'set_state', key => "unsubscribed:$key", value => '1'});

# RFC 3834: no reply to autoreplies, mailing lists or bulk mail.
my $auto = lc($field{'auto-submitted'} // 'no');
my $answer = $auto =~ /^no\b/
    && !grep({ defined $field{$_} } qw(list-id list-post list-unsubscribe))
    && lc($field{precedence} // '') !~ /^(?:bulk|list|junk)\b/
    && $address !~ /^(?:owner-[^@]*|[^@]*-request)@/;
if ($answer) {
    push @actions, {type => 'reply', text => $already
        ? "The address $address was already unsubscribed; you will get no more mail from this list.\n"
        : "The address $address has been unsubscribed; you will get no more mail from this list.\n"};
}
print JSON::PP->new->utf8->canonical->pretty->encode({actions => \@actions});
exit 0;
