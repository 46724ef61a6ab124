#!/usr/bin/perl
# A reference for bench/scan_bench.sh: the matching loop of pop-before-smtp (1.42/1.50) with its
# "Match Many Patterns" configuration, i.e. every server's $pat tried on every line, in order,
# until one matches; each $pat begins with [LOGTIME] (the classic syslog time) and captures
# (time, address). Written for this benchmark from the pattern intents listed in
# ../shared/reference/peers.md (section 2); the address groups are widened to IPv6 characters
# as the 1.50 fork does for some servers. It prints ADDRESS per match, like `relaypermit scan`
# prints one line per login. Not pop-before-smtp itself: no File::Tail, no Date::Parse, no DB
# writes, so it is faster than the real daemon; that is the fair side to err on.
use strict;
use warnings;

my $t  = '(\w\w\w +\d+ \d\d:\d\d:\d\d)';
my $ip = '[:f]*([0-9a-fA-F.:]+)';
my @pats = map { qr/$_/ } (
    # UW ipop3d/imapd (the default)
    "^$t \\S+ (?:ipop3s?d|imaps?d)\\[\\d+\\]: (?:Login|Authenticated|Auth|APOP) user=\\S+ host=(?:\\S+ )?\\[$ip\\]",
    # GNU pop3d (old)
    "^$t \\S+ gnu-pop3d\\[\\d+\\]: User .+ logged in with mailbox .+ from $ip",
    # qpopper
    "^$t \\S+ (?:in\\.q|q)?popper[^[]*\\[\\d+\\]: \\([^)]*\\) POP login by user \"[^\"]+\" at \\([^)]+\\) $ip",
    # Cyrus
    "^$t \\S+ (?:cyrus/)?(?:pop3|imap)[ds]?\\[\\d+\\]: login: .*?\\[$ip\\] .* User logged in",
    # Courier
    "^$t \\S+ (?:pop3|imap|couriertcp)(?:d|d-ssl|login): LOGIN, user=\\S+, ip=\\[$ip\\], port=",
    # vpopmail
    "^$t \\S+ vpopmail\\[\\d+\\]: vchkpw: login \\[\\S+\\] from $ip",
    # cucipop
    "^$t \\S+ cucipop\\[\\d+\\]: \\S+ $ip \\d+, \\d+ \\(\\d+\\), \\d+ \\(\\d+\\)",
    # vm-pop3d (one-line)
    "^$t \\S+ vm-pop3d\\[\\d+\\]: User .+? logged in from $ip",
    # popa3d (patched one-line)
    "^$t \\S+ popa3d\\[\\d+\\]: Authentication passed for \\S+ -- \\[$ip\\]",
    # Perdition
    "^$t \\S+ perdition\\S*\\[\\d+\\]: Auth: $ip->\\S+ user=\"\\S+\" server=\"\\S+\" port=\"\\S+\" status=\"ok\"",
    # solid-pop3d with logextend
    "^$t \\S+ spop3d\\[\\d+\\]: user \\S+ authenticated - $ip",
    # teapop
    "^$t \\S+ teapop\\[\\d+\\]: Successful login for .+? \\[$ip\\]",
    # Dovecot 2.x through syslog
    "^$t \\S+ dovecot: (?:imap|pop3)-login: Login: user=\\S+, method=\\S+, rip=$ip, lip=",
    # Apple
    "^$t \\S+ .*IMAP User \"[^\"]+\" log on successful from $ip",
);

while (my $line = <>) {
    for my $p (@pats) {
        if ($line =~ $p) {
            print "$2\n";
            last;
        }
    }
}
