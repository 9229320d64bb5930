# mfa-exec shell integration for zsh: eval "$(mfa-exec init zsh)" in ~/.zshrc.
#
#   mfa [OPTIONS]       load credentials into this shell (mfa-exec's options: -p, -t, -d, ...);
#                       without -p, the profile the last mfa named: `mfa` alone renews it
#   mfa-off             undo what mfa did, and nothing else
#   mfa-status          profile, session or role, time left; fails when none or expired
#   mfa_prompt_info     prints e.g. "[prod 42m]"; without a process or a subshell, with
#                       setopt prompt_subst: PROMPT='${MFA_PROMPT_INFO:+$MFA_PROMPT_INFO }'$PROMPT
#                       (MFA_PROMPT_INFO is the same text with % doubled for prompts)
#   MFA_EXEC_AUTO_REFRESH=1   before a prompt, reload from mfa-exec's cache when less than
#                       MFA_EXEC_MIN_REMAINING (default 5m) is left, else warn once
#   MFA_EXEC_BIN        the mfa-exec to run (default: mfa-exec on PATH)
#
# What mfa-off restores: mfa sets or removes the variables in _mfa_exec_names (what
# --print-env and exec mode change, AWS_PROFILE included, since a profile variable would win
# over the new keys in some SDKs). The first mfa saves their values; mfa-off puts back each one
# that still holds what mfa left in it, so a variable changed since keeps the change. mfa runs
# mfa-exec with those saved values too, so a second mfa starts from the shell as it was (its
# region, its keys), not from the credentials already loaded. Sourcing this file again keeps
# the saved state and adds no second hook.

# The top level runs with zsh's own options, whatever the user set (ksh_arrays, ...).
() {
    emulate -L zsh
    typeset -ga _mfa_exec_names
    _mfa_exec_names=(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
        AWS_CREDENTIAL_EXPIRATION AWS_REGION AWS_DEFAULT_REGION AWS_SECURITY_TOKEN AWS_PROFILE
        AWS_DEFAULT_PROFILE MFA_EXEC_PROFILE MFA_EXEC_ROLE_ARN)

    # Exactly what `--print-env --shell zsh` prints, less the last newline that $(...) drops:
    # `export NAME='...'` lines (a quote inside is '\'') and `unset NAME` lines for those
    # names. Anything else (help text, another version's format) is never evaluated.
    typeset -g _mfa_exec_re="(${(j:|:)_mfa_exec_names})"
    _mfa_exec_re="^((export $_mfa_exec_re='([^']|'\\\\'')*'|unset $_mfa_exec_re)"$'\n'")+\$"

    # EPOCHSECONDS, the clock without a process.
    zmodload zsh/datetime 2>/dev/null
}

function mfa {
    emulate -L zsh
    local arg out named=
    for arg in "$@"; do
        case $arg in
            --) break ;;
            -h | --help | -V | --version)
                command "${MFA_EXEC_BIN:-mfa-exec}" "$@"
                return
                ;;
            -p | --profile | -p?* | --profile=*) named=1 ;;
        esac
    done
    # No profile named: the one the last mfa named, so that `mfa` alone renews it.
    if [[ -z $named ]] && (( ${+_mfa_exec_active} && ${+_mfa_exec_profile} )); then
        set -- --profile "$_mfa_exec_profile" "$@"
    fi
    # The MFA prompt is on /dev/tty, so it shows although stdout is captured.
    out=$(
        _mfa_exec_undo
        command "${MFA_EXEC_BIN:-mfa-exec}" --print-env --shell zsh "$@"
    ) || return
    _mfa_exec_apply "$out" || return
    # Kept for auto-refresh, less what must not be repeated: a code is good once.
    typeset -ga _mfa_exec_args
    _mfa_exec_args=()
    unset _mfa_exec_profile
    while (( $# )); do
        case $1 in
            -t | --token-code) shift ;;
            -t?* | --token-code=* | --refresh | --no-prompt) ;;
            -p | --profile)
                typeset -g _mfa_exec_profile=${2-}
                _mfa_exec_args+=("$1" "${2-}")
                shift
                ;;
            -p?* | --profile=*)
                typeset -g _mfa_exec_profile=${${1#--profile=}#-p}
                _mfa_exec_args+=("$1")
                ;;
            *) _mfa_exec_args+=("$1") ;;
        esac
        shift
    done
    typeset -g _mfa_exec_retry_at=0
    return 0
}

function mfa-off {
    emulate -L zsh
    if (( ${+_mfa_exec_active} )); then
        _mfa_exec_undo
        unset _mfa_exec_active _mfa_exec_before _mfa_exec_left _mfa_exec_args \
            _mfa_exec_profile _mfa_exec_retry_at _mfa_exec_warned
    elif [[ -n ${MFA_EXEC_PROFILE-} ]]; then
        # Inherited (`mfa-exec -- zsh`, or mfa in a parent shell): nothing was saved here, so
        # drop the credentials mfa-exec marks as its own and leave the rest.
        unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
            AWS_CREDENTIAL_EXPIRATION MFA_EXEC_PROFILE MFA_EXEC_ROLE_ARN
    fi
    typeset -g MFA_PROMPT_INFO=
    return 0
}

function mfa-status {
    emulate -L zsh
    if [[ -z ${MFA_EXEC_PROFILE-} || -z ${AWS_CREDENTIAL_EXPIRATION-} ]]; then
        print -ru2 -- "mfa: no credentials loaded; run mfa"
        return 1
    fi
    local -i left
    local kind="MFA session"
    if ! _mfa_exec_epoch "$AWS_CREDENTIAL_EXPIRATION"; then
        print -ru2 -- "mfa: AWS_CREDENTIAL_EXPIRATION is not an RFC 3339 time"
        return 1
    fi
    left=$_mfa_exec_t
    _mfa_exec_now
    left=$(( left - _mfa_exec_t ))
    [[ -n ${MFA_EXEC_ROLE_ARN-} ]] && kind="role $MFA_EXEC_ROLE_ARN"
    # (V): control characters shown (^[), never sent to the terminal as they are.
    if (( left <= 0 )); then
        printf 'profile %s, %s, expired at %s\n' "${(V)MFA_EXEC_PROFILE}" "${(V)kind}" "${(V)AWS_CREDENTIAL_EXPIRATION}"
        return 1
    fi
    _mfa_exec_duration $left
    printf 'profile %s, %s, %s left (until %s)\n' "${(V)MFA_EXEC_PROFILE}" "${(V)kind}" "$_mfa_exec_s" "${(V)AWS_CREDENTIAL_EXPIRATION}"
}

# No process: a regular expression, arithmetic and zsh/datetime's clock.
function mfa_prompt_info {
    emulate -L zsh
    _mfa_exec_info
    # For a prompt: with prompt_subst the text is expanded again, so % is doubled.
    print -rn -- "${_mfa_exec_s//\%/%%}"
}

# --- internals ------------------------------------------------------------------------------

# Checks mfa-exec's output, saves the shell's values before the first mfa (or puts them back
# before another: a region the last profile had and this one has not must go), evaluates,
# and records what it left.
function _mfa_exec_apply {
    emulate -L zsh
    local MATCH MBEGIN MEND
    local -a match mbegin mend
    if [[ ! $1$'\n' =~ $_mfa_exec_re ]]; then
        print -ru2 -- "mfa: unexpected output from ${MFA_EXEC_BIN:-mfa-exec} --print-env; nothing changed"
        return 1
    fi
    if (( ${+_mfa_exec_active} )); then
        _mfa_exec_undo
    else
        _mfa_exec_snapshot
        typeset -gA _mfa_exec_before
        _mfa_exec_before=("${(@kv)_mfa_exec_snap}")
        typeset -g _mfa_exec_active=1
    fi
    eval "$1"
    _mfa_exec_snapshot
    typeset -gA _mfa_exec_left
    _mfa_exec_left=("${(@kv)_mfa_exec_snap}")
}

# The set variables among _mfa_exec_names, with their values, in _mfa_exec_snap.
function _mfa_exec_snapshot {
    emulate -L zsh
    local n
    typeset -gA _mfa_exec_snap
    _mfa_exec_snap=()
    for n in $_mfa_exec_names; do
        (( ${(P)+n} )) && _mfa_exec_snap[$n]=${(P)n}
    done
    return 0
}

# Puts back the saved value of each variable that still holds what mfa left in it.
function _mfa_exec_undo {
    emulate -L zsh
    (( ${+_mfa_exec_active} )) || return 0
    local n
    for n in $_mfa_exec_names; do
        if (( ${(P)+n} )); then
            (( ${+_mfa_exec_left[$n]} )) && [[ ${(P)n} == "${_mfa_exec_left[$n]}" ]] || continue
        else
            (( ${+_mfa_exec_left[$n]} )) && continue
        fi
        if (( ${+_mfa_exec_before[$n]} )); then
            export "$n=${_mfa_exec_before[$n]}"
        else
            unset "$n"
        fi
    done
    return 0
}

# Seconds since the epoch in _mfa_exec_t.
function _mfa_exec_now {
    if (( ${+EPOCHSECONDS} )); then
        typeset -g _mfa_exec_t=$EPOCHSECONDS
    else
        typeset -g _mfa_exec_t=$(date +%s)
    fi
}

# RFC 3339 time ($1) to seconds since the epoch in _mfa_exec_t, by days-from-civil.
function _mfa_exec_epoch {
    emulate -L zsh
    local MATCH MBEGIN MEND
    local -a match mbegin mend
    local re='^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|([+-])([0-9]{2}):?([0-9]{2}))$'
    [[ $1 =~ $re ]] || return 1
    local -i y=$(( 10#$match[1] )) m=$(( 10#$match[2] )) d=$(( 10#$match[3] ))
    local -i s=$(( 10#$match[4] * 3600 + 10#$match[5] * 60 + 10#$match[6] ))
    if [[ -n $match[9] ]]; then
        local -i off=$(( (10#$match[10] * 60 + 10#$match[11]) * 60 ))
        if [[ $match[9] == + ]]; then s=$(( s - off )); else s=$(( s + off )); fi
    fi
    y=$(( y - (m <= 2) ))
    local -i era=$(( (y >= 0 ? y : y - 399) / 400 ))
    local -i yoe=$(( y - era * 400 ))
    local -i doy=$(( (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1 ))
    local -i doe=$(( yoe * 365 + yoe / 4 - yoe / 100 + doy ))
    typeset -g _mfa_exec_t=$(( (era * 146097 + doe - 719468) * 86400 + s ))
}

# Seconds ($1) as 45s, 42m or 11h05m in _mfa_exec_s.
function _mfa_exec_duration {
    emulate -L zsh
    if (( $1 < 60 )); then
        typeset -g _mfa_exec_s=${1}s
    elif (( $1 < 3600 )); then
        typeset -g _mfa_exec_s=$(( $1 / 60 ))m
    else
        local -i mm=$(( $1 % 3600 / 60 ))
        typeset -g _mfa_exec_s=$(( $1 / 3600 ))h${(l:2::0:)mm}m
    fi
}

# "[profile 42m]", "[profile expired]" or "" in _mfa_exec_s.
function _mfa_exec_info {
    emulate -L zsh
    typeset -g _mfa_exec_s=
    [[ -n ${MFA_EXEC_PROFILE-} ]] && _mfa_exec_epoch "${AWS_CREDENTIAL_EXPIRATION-}" || return 0
    local -i left=$_mfa_exec_t
    _mfa_exec_now
    left=$(( left - _mfa_exec_t ))
    if (( left > 0 )); then
        _mfa_exec_duration $left
    else
        _mfa_exec_s=expired
    fi
    _mfa_exec_s="[${(V)MFA_EXEC_PROFILE} $_mfa_exec_s]"
}

# MFA_EXEC_MIN_REMAINING (seconds, or like 5m, 1h30m) in _mfa_exec_t; 5 minutes if unset or
# not understood.
function _mfa_exec_min_remaining {
    emulate -L zsh
    local MATCH MBEGIN MEND
    local -a match mbegin mend
    local s=${${MFA_EXEC_MIN_REMAINING-}// /} re='^([0-9]+)([a-z]*)'
    local -i total=0 n
    typeset -g _mfa_exec_t=300
    [[ -n $s ]] || return 0
    while [[ $s =~ $re ]]; do
        n=$(( 10#$match[1] ))
        case $match[2] in
            '' | s | sec | secs | second | seconds) ;;
            m | min | mins | minute | minutes) n=$(( n * 60 )) ;;
            h | hr | hrs | hour | hours) n=$(( n * 3600 )) ;;
            d | day | days) n=$(( n * 86400 )) ;;
            *) return 0 ;;
        esac
        total=$(( total + n ))
        s=${s:${#MATCH}}
    done
    [[ -z $s ]] && _mfa_exec_t=$total
    return 0
}

# Opt-in refresh before a prompt: at most one try a minute, and one warning per expiry.
function _mfa_exec_auto_refresh {
    emulate -L zsh
    _mfa_exec_epoch "${AWS_CREDENTIAL_EXPIRATION-}" || return 0
    local -i exp=$_mfa_exec_t now
    local out was=$AWS_CREDENTIAL_EXPIRATION key=${AWS_ACCESS_KEY_ID-}
    _mfa_exec_now
    now=$_mfa_exec_t
    _mfa_exec_min_remaining
    (( exp - now < _mfa_exec_t && now >= ${_mfa_exec_retry_at:-0} )) || return 0
    typeset -g _mfa_exec_retry_at=$(( now + 60 ))
    if out=$(
        _mfa_exec_undo
        command "${MFA_EXEC_BIN:-mfa-exec}" --print-env --shell zsh --no-prompt \
            "${_mfa_exec_args[@]}" </dev/null 2>/dev/null
    ) && _mfa_exec_apply "$out" && [[ ${AWS_ACCESS_KEY_ID-} != "$key" ]]; then
        return 0
    fi
    [[ ${_mfa_exec_warned-} != "$was" ]] || return 0
    typeset -g _mfa_exec_warned=$was
    if (( exp > now )); then
        _mfa_exec_duration $(( exp - now ))
        _mfa_exec_s="expire in $_mfa_exec_s"
    else
        _mfa_exec_s="have expired"
    fi
    printf 'mfa: the credentials of profile %s %s and cannot be renewed without an MFA code: run mfa\n' \
        "${(V)MFA_EXEC_PROFILE-}" "$_mfa_exec_s" >&2
}

# precmd: keeps $? for the prompt and for the hooks after this one.
function _mfa_exec_precmd {
    local -i mfa_status=$?
    emulate -L zsh
    if [[ ${MFA_EXEC_AUTO_REFRESH-} == 1 ]] && (( ${+_mfa_exec_active} )); then
        _mfa_exec_auto_refresh
    fi
    _mfa_exec_info
    typeset -g MFA_PROMPT_INFO=${_mfa_exec_s//\%/%%}
    # Completion may have been set up (compinit) after this file was sourced.
    if (( ! ${+_mfa_exec_compdef} && ${+functions[compdef]} )); then
        compdef _mfa_exec_complete mfa mfa-exec
        typeset -g _mfa_exec_compdef=1
    fi
    return mfa_status
}

() {
    emulate -L zsh
    autoload -Uz add-zsh-hook
    add-zsh-hook precmd _mfa_exec_precmd
}

# --- completion -----------------------------------------------------------------------------

function _mfa_exec_complete {
    local -a opts
    local state line i
    i=${words[(i)--]}
    if [[ ${words[1]:t} == mfa-exec ]] && (( i < CURRENT )); then
        # The command after --.
        shift $i words
        (( CURRENT -= i ))
        _normal
        return
    fi
    opts=(
        '(-p --profile)'{-p+,--profile=}'[AWS profile]:profile:_mfa_exec_profiles'
        '--serial-number=[MFA device serial or ARN]:serial: '
        '(-t --token-code)'{-t+,--token-code=}'[the 6-digit MFA code]:code: '
        '--token-command=[command whose output is the MFA code]:command: '
        '--role-arn=[role to assume]:role ARN: '
        '--role-session-name=[role session name]:name: '
        '--external-id=[external id for the role]:id: '
        '(-d --duration)'{-d+,--duration=}'[credential lifetime (3600, 90m, 12h)]:duration: '
        '--session-duration=[lifetime of the MFA session roles are assumed from]:duration: '
        '--region=[AWS region]:region: '
        '--prompt=[where to ask for the MFA code]:kind:(auto terminal zenity kdialog osascript ykman)'
        '--no-prompt[never ask for a code: fail when one is needed]'
        '--min-remaining=[reuse cached credentials while more than this is left]:duration: '
        '--refresh[ignore cached credentials]'
        '--no-cache[neither read nor write the credential cache]'
        '--no-session[for a role: AssumeRole with the code, without an MFA session]'
        '--policy=[session policy that narrows the role session (file, - or JSON)]:policy:_files'
        '*--policy-arn=[managed policy that narrows the role session]:policy ARN: '
        '--read-only[narrow the role session to ReadOnlyAccess]'
        '*--tag=[session tag KEY=VALUE]:tag: '
        '--source-identity=[source identity of the role session]:name: '
        '(- *)'{-h,--help}'[print help]'
    )
    if [[ ${words[1]:t} != mfa-exec ]]; then
        _arguments -s -S $opts
        return
    fi
    opts+=(
        '--print-env[print shell code that sets the variables]'
        '--shell=[shell syntax for --print-env]:shell:(sh bash zsh fish powershell)'
        '--credential-process[print the credential_process JSON document]'
        '--server[serve refreshed credentials to the command]'
        '--proxy[run the command behind a local signing proxy, with keys made for the run]'
        '(- *)'{-V,--version}'[print the version]'
        '(-)1:subcommand:((cache\:"show or clear cached credentials" init\:"print the shell integration script" completions\:"print shell completions"))'
        '*:: :->args'
    )
    # 300, not 0, when a ->state is left to complete below.
    _arguments -s -S $opts && return
    case $state:$words[1] in
        args:cache)
            _arguments '1:action:(list clear)' \
                '(-p --profile)'{-p+,--profile=}'[only this profile]:profile:_mfa_exec_profiles'
            ;;
        args:init | args:completions) _arguments '1:shell:(bash zsh fish powershell)' ;;
    esac
}

# Profile names from the AWS config files, as mfa-exec reads them.
function _mfa_exec_profiles {
    local -a profiles
    profiles=(${(f)"$(command "${MFA_EXEC_BIN:-mfa-exec}" profiles 2>/dev/null)"})
    _describe -t profiles 'AWS profile' profiles
}

() {
    emulate -L zsh
    if (( ${+functions[compdef]} )); then
        compdef _mfa_exec_complete mfa mfa-exec
        typeset -g _mfa_exec_compdef=1
    fi
}
