#!/bin/sh
# ticket.sh - a help-desk ticket opener for mail, in POSIX sh.
#
# For every mail it is given it
#   1. checks that the mail has a From and a Subject (otherwise it exits 65,
#      EX_DATAERR: a permanent failure, the mail goes to the dead letters);
#   2. takes a lock (flock(1), or a mkdir lock where there is no flock) and
#      allocates the next ticket number from DIR/ticket.counter; if it cannot
#      get the lock within 5 seconds it exits 75, EX_TEMPFAIL, and the mail
#      is tried again later;
#   3. saves the mail as DIR/tickets/<n>.eml and notes "<n> <Message-ID>" in
#      DIR/tickets/index. A mail that comes again (delivery is at least once,
#      by Postfix and by mailrobot alike) keeps the ticket it already got;
#   4. prints, for mailrobot's "actions" output mode, a reply to the sender
#      ("Ticket #<n> opened") and a set_state action remembering the last
#      ticket number (docs/robots/actions.md). No reply is asked for when the
#      mail must not be answered (RFC 3834: bounces, autoreplies, mailing
#      lists, bulk mail); the ticket is opened all the same.
#
# DIR is the first argument, or $HOME without one.
#
# As a mailrobot exec robot (runs as the exec user in <exec_directory>/tickets,
# which is its HOME):
#
#   {"name": "tickets", "kind": "exec",
#    "exec": {"command": "/usr/local/bin/ticket.sh", "output": "actions"}}
#
# As a classic Postfix alias (/etc/aliases, then run newaliases):
#
#   tickets: "|/usr/local/bin/ticket.sh /var/lib/tickets"
#
# local(8) does not set HOME for alias deliveries, so name the directory
# there; it must be writable by the user the command runs as
# (default_privs, or the owner of the aliases file). Under local(8) the JSON
# printed goes nowhere - the reply and the remembered state are the mailrobot
# part; the tickets themselves are saved either way, and the exit statuses
# mean the same (0 done, 75 try again later, others bounce).

umask 077
LOCK_WAIT=5        # seconds
EX_DATAERR=65
EX_TEMPFAIL=75

die() {
    status=$1
    shift
    echo "ticket.sh: $*" >&2
    exit "$status"
}

dir=${1:-${HOME:-}}
[ -n "$dir" ] || die $EX_TEMPFAIL "no directory: give one as the first argument"
mkdir -p "$dir/tickets" || die $EX_TEMPFAIL "cannot create $dir/tickets"

# The whole mail first: local(8) and mailrobot both write it to our stdin,
# after a "From sender date" line and Return-Path, X-Original-To and
# Delivered-To fields.
mail=$dir/tickets/.incoming.$$
lockdir=
trap 'rm -f "$mail"; [ -z "$lockdir" ] || rmdir "$lockdir"' 0
trap 'exit $EX_TEMPFAIL' HUP INT TERM
sed '1{/^From /d;}' > "$mail" || die $EX_TEMPFAIL "cannot save the mail in $dir/tickets"

# The header section, one field a line (continuation lines joined).
headers=$(awk '
    /^\r?$/ { exit }
    { sub(/\r$/, "") }
    /^[ \t]/ { field = field " " $0; next }
    { if (field != "") print field; field = $0 }
    END { if (field != "") print field }
' "$mail")

# The value of the first header field named $1 (case-insensitive).
field() {
    printf '%s\n' "$headers" | awk -v name="$1" '
        index(tolower($0), tolower(name) ":") == 1 {
            sub(/^[^:]*:[ \t]*/, ""); sub(/[ \t]+$/, ""); print; exit
        }'
}

from=$(field From)
subject=$(field Subject)
case $from in
    *@*) ;;
    *) die $EX_DATAERR "the mail has no From address" ;;
esac
[ -n "$subject" ] || die $EX_DATAERR "the mail has no Subject"
message_id=$(field Message-ID)

# RFC 3834: never answer bounces, autoreplies, lists or bulk mail.
answer=yes
case ${SENDER-x} in
    "" | [Mm][Aa][Ii][Ll][Ee][Rr]-[Dd][Aa][Ee][Mm][Oo][Nn]* | [Oo][Ww][Nn][Ee][Rr]-* | *-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]@*)
        answer=no ;;
esac
auto=$(field Auto-Submitted | tr '[:upper:]' '[:lower:]')
case $auto in
    "" | no | "no "* | "no;"* | "no("*) ;;
    *) answer=no ;;
esac
case $(field Precedence | tr '[:upper:]' '[:lower:]') in
    bulk* | list* | junk*) answer=no ;;
esac
for list_field in List-Id List-Post List-Unsubscribe; do
    [ -z "$(field $list_field)" ] || answer=no
done

# One ticket number per mail, even with many deliveries at once.
if command -v flock > /dev/null 2>&1; then
    exec 9>> "$dir/ticket.lock" || die $EX_TEMPFAIL "cannot open $dir/ticket.lock"
    flock -w $LOCK_WAIT 9 || die $EX_TEMPFAIL "ticket counter busy; try again later"
else
    waited=0
    until mkdir "$dir/ticket.lock.d" 2> /dev/null; do
        waited=$((waited + 1))
        [ $waited -le $LOCK_WAIT ] || die $EX_TEMPFAIL "ticket counter busy; try again later"
        sleep 1
    done
    lockdir=$dir/ticket.lock.d
fi

number=
if [ -n "$message_id" ] && [ -f "$dir/tickets/index" ]; then
    number=$(MESSAGE_ID=$message_id awk '
        { id = substr($0, index($0, " ") + 1) }
        id == ENVIRON["MESSAGE_ID"] { print $1; exit }' "$dir/tickets/index")
fi
if [ -z "$number" ]; then
    last=$(cat "$dir/ticket.counter" 2> /dev/null) || last=0
    case $last in
        "" | *[!0-9]*) die $EX_TEMPFAIL "$dir/ticket.counter does not hold a number" ;;
    esac
    number=$((last + 1))
    # The counter first: a crash after it leaves a gap, never a number twice.
    { echo "$number" > "$dir/ticket.counter.new" &&
      mv -f "$dir/ticket.counter.new" "$dir/ticket.counter" &&
      cp "$mail" "$dir/tickets/$number.eml.new" &&
      mv -f "$dir/tickets/$number.eml.new" "$dir/tickets/$number.eml" &&
      echo "$number $message_id" >> "$dir/tickets/index"; } ||
        die $EX_TEMPFAIL "cannot save ticket $number"
fi

# The mailrobot part: what to do about it (docs/robots/actions.md). The
# number is all digits, so it needs no JSON escaping.
printf '{"actions": [\n'
if [ $answer = yes ]; then
    printf '  {"type": "reply", "headers": {"X-Ticket": "%s"},\n' "$number"
    printf '   "text": "Ticket #%s opened.\\n\\nThank you for your mail. We will answer it as soon as we can;\\nplease quote ticket #%s when you write to us about it.\\n"},\n' \
        "$number" "$number"
fi
printf '  {"type": "set_state", "key": "last-ticket", "value": "%s"}\n' "$number"
printf ']}\n'
exit 0
