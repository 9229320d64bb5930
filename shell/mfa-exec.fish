# mfa-exec shell integration for fish: `mfa-exec init fish | source` in config.fish.
#
#   mfa [OPTIONS]       load credentials into this shell (mfa-exec's options: -p, -t, -d, ...);
#                       without -p, the profile the last mfa named: `mfa` alone renews it
#   mfa-off             undo what mfa did, and nothing else
#   mfa-status          profile, session or role, time left; fails when none or expired
#   mfa_prompt_info     prints e.g. "[prod 42m]", for fish_prompt
#   MFA_EXEC_AUTO_REFRESH=1   before a prompt, reload from mfa-exec's cache when less than
#                       MFA_EXEC_MIN_REMAINING (default 5m) is left, else warn once
#   MFA_EXEC_BIN        the mfa-exec to run (default: mfa-exec on PATH)
#
# What mfa-off restores: mfa sets or removes the variables in __mfa_exec_names (what
# --print-env and exec mode change, AWS_PROFILE included, since a profile variable would win
# over the new keys in some SDKs). The first mfa saves their values; mfa-off puts back each one
# that still holds what mfa left in it, so a variable changed since keeps the change. mfa runs
# mfa-exec with those saved values too, so a second mfa starts from the shell as it was (its
# region, its keys), not from the credentials already loaded. Sourcing this file again keeps
# the saved state and adds no second handler or completion.
#
# The clock: fish has no builtin for the time. On Linux, "now" is the boot time plus
# /proc/uptime, read with the `read` builtin; the boot time is measured once with date(1)
# after each mfa. Elsewhere each look at the clock runs date(1).

set -g __mfa_exec_names AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
    AWS_CREDENTIAL_EXPIRATION AWS_REGION AWS_DEFAULT_REGION AWS_SECURITY_TOKEN AWS_PROFILE \
    AWS_DEFAULT_PROFILE MFA_EXEC_PROFILE MFA_EXEC_ROLE_ARN

# Exactly what `--print-env --shell fish` prints, less the last newline: `set -gx NAME '...'`
# lines (\\ and \' inside the quotes) and `set -e -g NAME 2>/dev/null; or true` lines for
# those names. Anything else (help text, another version's format) is never evaluated.
set -g __mfa_exec_re "(?:"(string join '|' -- $__mfa_exec_names)")"
set __mfa_exec_re "\A(?:(?:set -gx $__mfa_exec_re '(?:[^'\\\\]|\\\\[\\\\'])*+'|set -e -g $__mfa_exec_re 2>/dev/null; or true)(?:\n|\z))++\z"

function mfa --description 'Load MFA-backed AWS credentials into this shell (mfa-exec options)'
    set -l named
    for arg in $argv
        switch $arg
            case --
                break
            case -h --help -V --version
                set -l bin (__mfa_exec_bin)
                command $bin $argv
                return
            case -p --profile '-p?*' '--profile=*'
                set named 1
        end
    end
    # No profile named: the one the last mfa named, so that `mfa` alone renews it.
    if test -z "$named"; and set -q __mfa_exec_active; and set -q __mfa_exec_profile
        set argv --profile $__mfa_exec_profile $argv
    end
    # The MFA prompt is on /dev/tty, so it shows although the output is captured.
    set -l out (__mfa_exec_fetch $argv)
    or return
    __mfa_exec_apply $out
    or return
    set -e -g __mfa_exec_boot
    # Kept for auto-refresh, less what must not be repeated: a code is good once.
    set -g __mfa_exec_args
    set -e -g __mfa_exec_profile
    set -l skip
    for arg in $argv
        switch "$skip"
            case code
                set skip
                continue
            case profile
                set skip
                set -g __mfa_exec_profile $arg
                set -a __mfa_exec_args $arg
                continue
        end
        switch $arg
            case -t --token-code
                set skip code
            case '-t?*' '--token-code=*' --refresh --no-prompt
            case -p --profile
                set skip profile
                set -a __mfa_exec_args $arg
            case '--profile=*' '-p?*'
                set -g __mfa_exec_profile (string replace -r '^(--profile=|-p)' '' -- $arg)
                set -a __mfa_exec_args $arg
            case '*'
                set -a __mfa_exec_args $arg
        end
    end
    set -g __mfa_exec_retry_at 0
    return 0
end

function mfa-off --description 'Remove what mfa set, and nothing else'
    if set -q __mfa_exec_active
        __mfa_exec_restore
        for n in $__mfa_exec_names
            set -e -g __mfa_exec_before_$n
            set -e -g __mfa_exec_left_$n
        end
        for n in __mfa_exec_active __mfa_exec_args __mfa_exec_profile __mfa_exec_retry_at \
                __mfa_exec_warned
            set -e -g $n
        end
    else if set -q MFA_EXEC_PROFILE
        # Inherited (`mfa-exec -- fish`, or mfa in a parent shell): nothing was saved here, so
        # drop the credentials mfa-exec marks as its own and leave the rest.
        for n in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
                AWS_CREDENTIAL_EXPIRATION MFA_EXEC_PROFILE MFA_EXEC_ROLE_ARN
            set -e -g $n
        end
    end
    return 0
end

function mfa-status --description 'Show the loaded profile, session or role, and time left'
    if test -z "$MFA_EXEC_PROFILE"; or test -z "$AWS_CREDENTIAL_EXPIRATION"
        echo "mfa: no credentials loaded; run mfa" >&2
        return 1
    end
    set -l exp (__mfa_exec_epoch $AWS_CREDENTIAL_EXPIRATION)
    or begin
        echo "mfa: AWS_CREDENTIAL_EXPIRATION is not an RFC 3339 time" >&2
        return 1
    end
    set -l left (math $exp - (__mfa_exec_now))
    set -l kind "MFA session"
    test -n "$MFA_EXEC_ROLE_ARN"; and set kind "role $MFA_EXEC_ROLE_ARN"
    set -l profile (__mfa_exec_safe "$MFA_EXEC_PROFILE")
    set kind (__mfa_exec_safe "$kind")
    if test $left -le 0
        printf 'profile %s, %s, expired at %s\n' "$profile" "$kind" $AWS_CREDENTIAL_EXPIRATION
        return 1
    end
    printf 'profile %s, %s, %s left (until %s)\n' "$profile" "$kind" (__mfa_exec_duration $left) $AWS_CREDENTIAL_EXPIRATION
end

# No process (on Linux): string, math, and the clock from /proc/uptime.
function mfa_prompt_info --description 'Print e.g. [prod 42m] for the credentials mfa loaded'
    test -n "$MFA_EXEC_PROFILE"; or return 0
    set -l exp (__mfa_exec_epoch "$AWS_CREDENTIAL_EXPIRATION"); or return 0
    set -l left (math $exp - (__mfa_exec_now))
    set -l profile (__mfa_exec_safe "$MFA_EXEC_PROFILE")
    if test $left -gt 0
        printf '[%s %s]' "$profile" (__mfa_exec_duration $left)
    else
        printf '[%s expired]' "$profile"
    end
    return 0
end

# Outside text made safe for the terminal: a value with a control character in it (an escape
# sequence in a profile name) is shown escaped (x\e\[2Jy), never sent as it is.
function __mfa_exec_safe
    if string match -qr '[\x00-\x1f\x7f]' -- "$argv[1]"
        string escape -- "$argv[1]"
    else
        printf '%s\n' "$argv[1]"
    end
end

# --- internals ------------------------------------------------------------------------------

function __mfa_exec_bin
    if test -n "$MFA_EXEC_BIN"
        echo $MFA_EXEC_BIN
    else
        echo mfa-exec
    end
end

# `mfa-exec --print-env --shell fish ARGS`, run with the variables as they were before mfa
# (locals of this function, so the shell itself is untouched).
function __mfa_exec_fetch
    eval (string join '; ' -- (__mfa_exec_undo_commands))
    set -l bin (__mfa_exec_bin)
    command $bin --print-env --shell fish $argv
end

# `set -lx NAME VALUE` or `set -l NAME` (hidden from commands) for each variable that still
# holds what mfa left in it.
function __mfa_exec_undo_commands
    set -q __mfa_exec_active; or return 0
    for n in $__mfa_exec_names
        __mfa_exec_same $n __mfa_exec_left_$n; or continue
        set -l before __mfa_exec_before_$n
        if set -q $before
            echo set -lx $n (string escape -- $$before)
        else
            echo set -l $n
        end
    end
    return 0
end

# Checks mfa-exec's output (its lines as arguments), saves the shell's values before the first
# mfa (or puts them back before another: a region the last profile had and this one has not
# must go), evaluates, and records what it left.
function __mfa_exec_apply
    set -l __mfa_exec_text (string join \n -- $argv | string collect)
    if not string match -rq -- $__mfa_exec_re $__mfa_exec_text
        echo "mfa: unexpected output from "(__mfa_exec_bin)" --print-env; nothing changed" >&2
        return 1
    end
    if set -q __mfa_exec_active
        __mfa_exec_restore
    else
        __mfa_exec_save before
        set -g __mfa_exec_active 1
    end
    eval $__mfa_exec_text
    for n in AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
        # `set -e -g` cannot reach a universal variable, and commands still get it.
        if set -q -U $n; and not set -q -g $n
            echo "mfa: $n is a universal variable, so commands still get it; remove it with set -e -U $n" >&2
        end
    end
    __mfa_exec_save left
    return 0
end

# Stores each variable's value (or, by erasing it, its absence) in __mfa_exec_$argv[1]_NAME.
function __mfa_exec_save -a which
    for n in $__mfa_exec_names
        if set -q $n
            set -g __mfa_exec_"$which"_$n $$n
        else
            set -e -g __mfa_exec_"$which"_$n
        end
    end
    return 0
end

# Whether the variables named $argv[1] and $argv[2] are both unset, or equal.
function __mfa_exec_same -a a b
    if set -q $a
        set -q $b; and test (count $$a) -eq (count $$b); and test "x$$a" = "x$$b"
    else
        not set -q $b
    end
end

# Puts back the saved value of each variable that still holds what mfa left in it.
function __mfa_exec_restore
    for n in $__mfa_exec_names
        __mfa_exec_same $n __mfa_exec_left_$n; or continue
        set -e -g $n
        # A universal variable that was there before shows through again.
        set -l before __mfa_exec_before_$n
        if set -q $before; and not __mfa_exec_same $n $before
            set -gx $n $$before
        end
    end
    return 0
end

function __mfa_exec_now
    if test -r /proc/uptime
        read -l up rest </proc/uptime
        if not set -q __mfa_exec_boot
            set -g __mfa_exec_boot (math (command date +%s) - $up)
        end
        math -s0 "floor($__mfa_exec_boot + $up)"
    else
        command date +%s
    end
end

# RFC 3339 time to seconds since the epoch, by days-from-civil.
function __mfa_exec_epoch -a t
    string match -rq '^(?<y>\d{4})-(?<mo>\d\d)-(?<d>\d\d)[Tt ](?<h>\d\d):(?<mi>\d\d):(?<s>\d\d)(?:\.\d+)?(?:[Zz]|(?<sign>[+-])(?<oh>\d\d):?(?<om>\d\d))$' -- $t
    or return 1
    set -l off 0
    if test "$sign" = +
        set off (math "-($oh * 60 + $om) * 60")
    else if test "$sign" = -
        set off (math "($oh * 60 + $om) * 60")
    end
    set -l m (math $mo)
    set -l yy (math $y)
    set -l mp (math $m + 9)
    if test $m -gt 2
        set mp (math $m - 3)
    else
        set yy (math $yy - 1)
    end
    set -l era (math "floor($yy / 400)")
    set -l yoe (math "$yy - $era * 400")
    set -l doy (math "floor((153 * $mp + 2) / 5) + $d - 1")
    set -l doe (math "$yoe * 365 + floor($yoe / 4) - floor($yoe / 100) + $doy")
    math -s0 "($era * 146097 + $doe - 719468) * 86400 + $h * 3600 + $mi * 60 + $s + $off"
end

# Seconds as 45s, 42m or 11h05m.
function __mfa_exec_duration -a secs
    if test $secs -lt 60
        echo {$secs}s
    else if test $secs -lt 3600
        echo (math "floor($secs / 60)")m
    else
        printf '%dh%02dm\n' (math "floor($secs / 3600)") (math "floor($secs % 3600 / 60)")
    end
end

# MFA_EXEC_MIN_REMAINING (seconds, or like 5m, 1h30m); 5 minutes if unset or not understood.
function __mfa_exec_min_remaining
    set -l text (string replace -a ' ' '' -- "$MFA_EXEC_MIN_REMAINING")
    test -n "$text"; or begin
        echo 300
        return 0
    end
    string match -rq '^(?:\d+[a-z]*)+$' -- $text; or begin
        echo 300
        return 0
    end
    set -l total 0
    for part in (string match -ra '\d+[a-z]*' -- $text)
        set -l n (string match -r '^\d+' -- $part)
        set n (math $n)
        switch (string replace -r '^\d+' '' -- $part)
            case '' s sec secs second seconds
            case m min mins minute minutes
                set n (math $n \* 60)
            case h hr hrs hour hours
                set n (math $n \* 3600)
            case d day days
                set n (math $n \* 86400)
            case '*'
                echo 300
                return 0
        end
        set total (math $total + $n)
    end
    echo $total
end

# Opt-in refresh before a prompt: at most one try a minute, and one warning per expiry.
function __mfa_exec_auto_refresh
    set -l exp (__mfa_exec_epoch "$AWS_CREDENTIAL_EXPIRATION"); or return 0
    set -l now (__mfa_exec_now)
    set -l was $AWS_CREDENTIAL_EXPIRATION
    set -l key $AWS_ACCESS_KEY_ID
    test (math $exp - $now) -lt (__mfa_exec_min_remaining); or return 0
    set -q __mfa_exec_retry_at; and test $now -lt $__mfa_exec_retry_at; and return 0
    set -g __mfa_exec_retry_at (math $now + 60)
    set -l out (__mfa_exec_fetch --no-prompt $__mfa_exec_args </dev/null 2>/dev/null)
    and __mfa_exec_apply $out
    and test "$AWS_ACCESS_KEY_ID" != "$key"
    and return 0
    test "$__mfa_exec_warned" != "$was"; or return 0
    set -g __mfa_exec_warned $was
    set -l when "have expired"
    test $exp -gt $now; and set when "expire in "(__mfa_exec_duration (math $exp - $now))
    printf 'mfa: the credentials of profile %s %s and cannot be renewed without an MFA code: run mfa\n' \
        (__mfa_exec_safe "$MFA_EXEC_PROFILE") $when >&2
end

# Before each prompt; keeps $status for the prompt and for the handlers after this one.
function __mfa_exec_on_prompt --on-event fish_prompt
    set -l last_status $status
    if test "$MFA_EXEC_AUTO_REFRESH" = 1; and set -q __mfa_exec_active
        __mfa_exec_auto_refresh
    end
    return $last_status
end

# --- completion -----------------------------------------------------------------------------

# Profile names from the AWS config files, as mfa-exec reads them.
function __mfa_exec_profiles
    set -l bin (__mfa_exec_bin)
    command $bin profiles 2>/dev/null
end

# Whether the token being completed comes after `mfa-exec ... --`.
function __mfa_exec_after_dashdash
    contains -- -- (commandline -opc)
end

# Completes the command after `--` as if it were typed alone.
function __mfa_exec_complete_command
    set -l words (commandline -opc)
    set -l i (contains -i -- -- $words)
    set -e words[1..$i]
    complete -C (string join ' ' -- (string escape -- $words) (commandline -ct))
end

complete -c mfa -e
complete -c mfa-exec -e
for cmd in mfa mfa-exec
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -s p -l profile -x -a '(__mfa_exec_profiles)' -d 'AWS profile'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l serial-number -x -d 'MFA device serial or ARN'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -s t -l token-code -x -d 'The 6-digit MFA code'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l token-command -x -d 'Command whose output is the MFA code'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l role-arn -x -d 'Role to assume'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l role-session-name -x -d 'Role session name'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l external-id -x -d 'External id for the role'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -s d -l duration -x -d 'Credential lifetime (3600, 90m, 12h)'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l session-duration -x -d 'Lifetime of the MFA session'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l region -x -d 'AWS region'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l prompt -x -a 'auto terminal zenity kdialog osascript ykman' -d 'Where to ask for the MFA code'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l no-prompt -d 'Never ask for a code'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l min-remaining -x -d 'Reuse cached credentials while more is left'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l refresh -d 'Ignore cached credentials'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l no-cache -d 'Neither read nor write the cache'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l no-session -d 'For a role: AssumeRole with the code directly'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l policy -r -F -d 'Session policy: file, - or JSON'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l policy-arn -x -d 'Managed policy that narrows the role session'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l read-only -d 'Narrow the role session to ReadOnlyAccess'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l tag -x -d 'Session tag KEY=VALUE'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -l source-identity -x -d 'Source identity of the role session'
    complete -c $cmd -n 'not __mfa_exec_after_dashdash' -s h -l help -d 'Print help'
end
complete -c mfa -f
complete -c mfa-exec -n 'not __mfa_exec_after_dashdash' -f
complete -c mfa-exec -n 'not __mfa_exec_after_dashdash' -l print-env -d 'Print shell code that sets the variables'
complete -c mfa-exec -n 'not __mfa_exec_after_dashdash' -l shell -x -a 'sh bash zsh fish powershell' -d 'Shell syntax for --print-env'
complete -c mfa-exec -n 'not __mfa_exec_after_dashdash' -l credential-process -d 'Print the credential_process JSON'
complete -c mfa-exec -n 'not __mfa_exec_after_dashdash' -l server -d 'Serve refreshed credentials to the command'
complete -c mfa-exec -n 'not __mfa_exec_after_dashdash' -l proxy -d 'Run the command behind a local signing proxy, with keys made for the run'
complete -c mfa-exec -n 'not __mfa_exec_after_dashdash' -s V -l version -d 'Print the version'
complete -c mfa-exec -n __fish_use_subcommand -f -a cache -d 'Show or clear cached credentials'
complete -c mfa-exec -n __fish_use_subcommand -f -a init -d 'Print the shell integration script'
complete -c mfa-exec -n __fish_use_subcommand -f -a completions -d 'Print shell completions'
complete -c mfa-exec -n '__fish_seen_subcommand_from cache; and not __fish_seen_subcommand_from list clear' -f -a 'list clear'
complete -c mfa-exec -n '__fish_seen_subcommand_from init completions' -f -a 'bash zsh fish powershell'
complete -c mfa-exec -n __mfa_exec_after_dashdash -f -a '(__mfa_exec_complete_command)'
