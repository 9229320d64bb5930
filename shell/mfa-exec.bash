# mfa-exec shell integration for bash: eval "$(mfa-exec init bash)" in ~/.bashrc.
#
#   mfa [OPTIONS]       load credentials into this shell (mfa-exec's options: -p, -t, -d, ...);
#                       without -p, the profile the last mfa named: `mfa` alone renews it
#   mfa-off             undo what mfa did, and nothing else
#   mfa-status          profile, session or role, time left; fails when none or expired
#   mfa_prompt_info     prints e.g. "[prod 42m]"; without a process or a subshell:
#                       PS1='${MFA_PROMPT_INFO:+$MFA_PROMPT_INFO }'$PS1
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

_mfa_exec_names=(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
    AWS_CREDENTIAL_EXPIRATION AWS_REGION AWS_DEFAULT_REGION AWS_SECURITY_TOKEN AWS_PROFILE
    AWS_DEFAULT_PROFILE MFA_EXEC_PROFILE MFA_EXEC_ROLE_ARN)

# Exactly what `--print-env --shell bash` prints, less the last newline that $(...) drops:
# `export NAME='...'` lines (a quote inside is '\'') and `unset NAME` lines for those names.
# Anything else (help text, another version's format) is never evaluated.
_mfa_exec_re='(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AWS_CREDENTIAL_EXPIRATION|AWS_REGION|AWS_DEFAULT_REGION|AWS_SECURITY_TOKEN|AWS_PROFILE|AWS_DEFAULT_PROFILE|MFA_EXEC_PROFILE|MFA_EXEC_ROLE_ARN)'
_mfa_exec_re="^((export $_mfa_exec_re='([^']|'\\\\'')*'|unset $_mfa_exec_re)"$'\n'")+\$"

function mfa {
    local _mfa_arg _mfa_out _mfa_named=
    for _mfa_arg in "$@"; do
        case $_mfa_arg in
            --) break ;;
            -h | --help | -V | --version)
                command "${MFA_EXEC_BIN:-mfa-exec}" "$@"
                return
                ;;
            -p | --profile | -p?* | --profile=*) _mfa_named=1 ;;
        esac
    done
    # No profile named: the one the last mfa named, so that `mfa` alone renews it.
    if [[ -z $_mfa_named && -n ${_mfa_exec_active-} && -n ${_mfa_exec_profile+x} ]]; then
        set -- --profile "$_mfa_exec_profile" "$@"
    fi
    # The MFA prompt is on /dev/tty, so it shows although stdout is captured.
    _mfa_out=$(
        _mfa_exec_undo
        command "${MFA_EXEC_BIN:-mfa-exec}" --print-env --shell bash "$@"
    ) || return
    _mfa_exec_apply "$_mfa_out" || return
    # Kept for auto-refresh, less what must not be repeated: a code is good once.
    _mfa_exec_args=()
    unset -v _mfa_exec_profile
    while (($#)); do
        case $1 in
            -t | --token-code) shift ;;
            -t?* | --token-code=* | --refresh | --no-prompt) ;;
            -p | --profile)
                _mfa_exec_profile=${2-}
                _mfa_exec_args+=("$1" "${2-}")
                shift
                ;;
            -p?* | --profile=*)
                _mfa_exec_profile=${1#--profile=}
                _mfa_exec_profile=${_mfa_exec_profile#-p}
                _mfa_exec_args+=("$1")
                ;;
            *) _mfa_exec_args+=("$1") ;;
        esac
        shift
    done
    _mfa_exec_retry_at=0
    return 0
}

function mfa-off {
    if [[ -n ${_mfa_exec_active-} ]]; then
        _mfa_exec_undo
        local _mfa_n
        for _mfa_n in "${_mfa_exec_names[@]}"; do
            unset -v "_mfa_exec_before_$_mfa_n" "_mfa_exec_left_$_mfa_n"
        done
        unset -v _mfa_exec_active _mfa_exec_args _mfa_exec_profile _mfa_exec_retry_at \
            _mfa_exec_warned
    elif [[ -n ${MFA_EXEC_PROFILE-} ]]; then
        # Inherited (`mfa-exec -- bash`, or mfa in a parent shell): nothing was saved here, so
        # drop the credentials mfa-exec marks as its own and leave the rest.
        unset -v AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
            AWS_CREDENTIAL_EXPIRATION MFA_EXEC_PROFILE MFA_EXEC_ROLE_ARN
    fi
    MFA_PROMPT_INFO=
    return 0
}

function mfa-status {
    if [[ -z ${MFA_EXEC_PROFILE-} || -z ${AWS_CREDENTIAL_EXPIRATION-} ]]; then
        echo "mfa: no credentials loaded; run mfa" >&2
        return 1
    fi
    if ! _mfa_exec_epoch "$AWS_CREDENTIAL_EXPIRATION"; then
        echo "mfa: AWS_CREDENTIAL_EXPIRATION is not an RFC 3339 time" >&2
        return 1
    fi
    local _mfa_left=$_mfa_exec_t _mfa_kind="MFA session"
    _mfa_exec_now
    _mfa_left=$((_mfa_left - _mfa_exec_t))
    [[ -n ${MFA_EXEC_ROLE_ARN-} ]] && _mfa_kind="role $MFA_EXEC_ROLE_ARN"
    local _mfa_profile
    _mfa_exec_safe "$MFA_EXEC_PROFILE"; _mfa_profile=$_mfa_exec_v
    _mfa_exec_safe "$_mfa_kind"; _mfa_kind=$_mfa_exec_v
    if ((_mfa_left <= 0)); then
        printf 'profile %s, %s, expired at %s\n' "$_mfa_profile" "$_mfa_kind" "$AWS_CREDENTIAL_EXPIRATION"
        return 1
    fi
    _mfa_exec_duration "$_mfa_left"
    printf 'profile %s, %s, %s left (until %s)\n' "$_mfa_profile" "$_mfa_kind" "$_mfa_exec_s" "$AWS_CREDENTIAL_EXPIRATION"
}

# No process and no subshell: a regular expression, arithmetic and bash's own clock.
function mfa_prompt_info {
    _mfa_exec_info
    printf '%s' "$_mfa_exec_s"
}

# --- internals ------------------------------------------------------------------------------

# Checks mfa-exec's output, saves the shell's values before the first mfa (or puts them back
# before another: a region the last profile had and this one has not must go), evaluates,
# and records what it left.
function _mfa_exec_apply {
    if [[ ! $1$'\n' =~ $_mfa_exec_re ]]; then
        echo "mfa: unexpected output from ${MFA_EXEC_BIN:-mfa-exec} --print-env; nothing changed" >&2
        return 1
    fi
    if [[ -n ${_mfa_exec_active-} ]]; then
        _mfa_exec_undo
    else
        _mfa_exec_save before
        _mfa_exec_active=1
    fi
    eval "$1"
    _mfa_exec_save left
}

# Stores each variable's value (or, by leaving it unset, its absence) in _mfa_exec_$1_NAME.
function _mfa_exec_save {
    local _mfa_n
    for _mfa_n in "${_mfa_exec_names[@]}"; do
        if [[ -n ${!_mfa_n+x} ]]; then
            printf -v "_mfa_exec_$1_$_mfa_n" '%s' "${!_mfa_n}"
        else
            unset -v "_mfa_exec_$1_$_mfa_n"
        fi
    done
}

# Puts back the saved value of each variable that still holds what mfa left in it.
function _mfa_exec_undo {
    [[ -n ${_mfa_exec_active-} ]] || return 0
    local _mfa_n _mfa_b _mfa_l
    for _mfa_n in "${_mfa_exec_names[@]}"; do
        _mfa_b=_mfa_exec_before_$_mfa_n
        _mfa_l=_mfa_exec_left_$_mfa_n
        if [[ -n ${!_mfa_n+x} ]]; then
            [[ -n ${!_mfa_l+x} && ${!_mfa_n} == "${!_mfa_l}" ]] || continue
        else
            [[ -z ${!_mfa_l+x} ]] || continue
        fi
        if [[ -n ${!_mfa_b+x} ]]; then
            export "$_mfa_n=${!_mfa_b}"
        else
            unset -v "$_mfa_n"
        fi
    done
    return 0
}

# Seconds since the epoch in _mfa_exec_t: bash 5's EPOCHSECONDS, bash 4.2's printf, else date.
function _mfa_exec_now {
    if [[ -n ${EPOCHSECONDS-} ]]; then
        _mfa_exec_t=$EPOCHSECONDS
    elif ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 402)); then
        printf -v _mfa_exec_t '%(%s)T' -1
    else
        _mfa_exec_t=$(date +%s)
    fi
}

# RFC 3339 time ($1) to seconds since the epoch in _mfa_exec_t, by days-from-civil.
function _mfa_exec_epoch {
    [[ $1 =~ ^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt\ ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|([+-])([0-9]{2}):?([0-9]{2}))$ ]] || return 1
    local y=$((10#${BASH_REMATCH[1]})) m=$((10#${BASH_REMATCH[2]})) d=$((10#${BASH_REMATCH[3]}))
    local s=$((10#${BASH_REMATCH[4]} * 3600 + 10#${BASH_REMATCH[5]} * 60 + 10#${BASH_REMATCH[6]}))
    if [[ -n ${BASH_REMATCH[9]} ]]; then
        local off=$(((10#${BASH_REMATCH[10]} * 60 + 10#${BASH_REMATCH[11]}) * 60))
        if [[ ${BASH_REMATCH[9]} == + ]]; then s=$((s - off)); else s=$((s + off)); fi
    fi
    y=$((y - (m <= 2)))
    local era=$(((y >= 0 ? y : y - 399) / 400))
    local yoe=$((y - era * 400))
    local doy=$(((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1))
    local doe=$((yoe * 365 + yoe / 4 - yoe / 100 + doy))
    _mfa_exec_t=$(((era * 146097 + doe - 719468) * 86400 + s))
}

# Seconds ($1) as 45s, 42m or 11h05m in _mfa_exec_s.
function _mfa_exec_duration {
    if (($1 < 60)); then
        _mfa_exec_s=${1}s
    elif (($1 < 3600)); then
        _mfa_exec_s=$(($1 / 60))m
    else
        printf -v _mfa_exec_s '%dh%02dm' $(($1 / 3600)) $(($1 % 3600 / 60))
    fi
}

# "[profile 42m]", "[profile expired]" or "" in _mfa_exec_s.
function _mfa_exec_info {
    _mfa_exec_s=
    [[ -n ${MFA_EXEC_PROFILE-} ]] && _mfa_exec_epoch "${AWS_CREDENTIAL_EXPIRATION-}" || return 0
    local _mfa_left=$_mfa_exec_t
    _mfa_exec_now
    _mfa_left=$((_mfa_left - _mfa_exec_t))
    if ((_mfa_left > 0)); then
        _mfa_exec_duration "$_mfa_left"
    else
        _mfa_exec_s=expired
    fi
    local _mfa_when=$_mfa_exec_s
    _mfa_exec_safe "$MFA_EXEC_PROFILE"
    _mfa_exec_s="[$_mfa_exec_v $_mfa_when]"
}

# Outside text made safe for the terminal, in _mfa_exec_v: a value with a control character
# in it (an escape sequence in a profile name) is shown quoted and escaped, $'x\E[2Jy',
# never sent to the terminal as it is.
function _mfa_exec_safe {
    if [[ $1 == *[[:cntrl:]]* ]]; then
        printf -v _mfa_exec_v '%q' "$1"
    else
        _mfa_exec_v=$1
    fi
}

# MFA_EXEC_MIN_REMAINING (seconds, or like 5m, 1h30m) in _mfa_exec_t; 5 minutes if unset or
# not understood.
function _mfa_exec_min_remaining {
    local _mfa_s=${MFA_EXEC_MIN_REMAINING-} _mfa_total=0 _mfa_n
    _mfa_s=${_mfa_s// /}
    _mfa_exec_t=300
    [[ -n $_mfa_s ]] || return 0
    while [[ $_mfa_s =~ ^([0-9]+)([a-z]*) ]]; do
        _mfa_n=$((10#${BASH_REMATCH[1]}))
        case ${BASH_REMATCH[2]} in
            '' | s | sec | secs | second | seconds) ;;
            m | min | mins | minute | minutes) _mfa_n=$((_mfa_n * 60)) ;;
            h | hr | hrs | hour | hours) _mfa_n=$((_mfa_n * 3600)) ;;
            d | day | days) _mfa_n=$((_mfa_n * 86400)) ;;
            *) return 0 ;;
        esac
        _mfa_total=$((_mfa_total + _mfa_n))
        _mfa_s=${_mfa_s:${#BASH_REMATCH[0]}}
    done
    [[ -z $_mfa_s ]] && _mfa_exec_t=$_mfa_total
    return 0
}

# Opt-in refresh before a prompt: at most one try a minute, and one warning per expiry.
function _mfa_exec_auto_refresh {
    _mfa_exec_epoch "${AWS_CREDENTIAL_EXPIRATION-}" || return 0
    local _mfa_exp=$_mfa_exec_t _mfa_now _mfa_out _mfa_was=$AWS_CREDENTIAL_EXPIRATION
    local _mfa_key=${AWS_ACCESS_KEY_ID-}
    _mfa_exec_now
    _mfa_now=$_mfa_exec_t
    _mfa_exec_min_remaining
    ((_mfa_exp - _mfa_now < _mfa_exec_t && _mfa_now >= ${_mfa_exec_retry_at:-0})) || return 0
    _mfa_exec_retry_at=$((_mfa_now + 60))
    if _mfa_out=$(
        _mfa_exec_undo
        command "${MFA_EXEC_BIN:-mfa-exec}" --print-env --shell bash --no-prompt \
            ${_mfa_exec_args[@]+"${_mfa_exec_args[@]}"} </dev/null 2>/dev/null
    ) && _mfa_exec_apply "$_mfa_out" && [[ ${AWS_ACCESS_KEY_ID-} != "$_mfa_key" ]]; then
        return 0
    fi
    [[ ${_mfa_exec_warned-} != "$_mfa_was" ]] || return 0
    _mfa_exec_warned=$_mfa_was
    if ((_mfa_exp > _mfa_now)); then
        _mfa_exec_duration $((_mfa_exp - _mfa_now))
        _mfa_exec_s="expire in $_mfa_exec_s"
    else
        _mfa_exec_s="have expired"
    fi
    _mfa_exec_safe "${MFA_EXEC_PROFILE-}"
    printf 'mfa: the credentials of profile %s %s and cannot be renewed without an MFA code: run mfa\n' \
        "$_mfa_exec_v" "$_mfa_exec_s" >&2
}

# Before each prompt; keeps $? for the prompt and for the hooks after this one.
function _mfa_exec_prompt_hook {
    local _mfa_status=$?
    if [[ ${MFA_EXEC_AUTO_REFRESH-} == 1 && -n ${_mfa_exec_active-} ]]; then
        _mfa_exec_auto_refresh
    fi
    _mfa_exec_info
    # shellcheck disable=SC2034 # for PS1
    MFA_PROMPT_INFO=$_mfa_exec_s
    return "$_mfa_status"
}

# Once, first: PROMPT_COMMAND is an array from bash 5.1 when the user made it one.
if [[ -n ${PROMPT_COMMAND+x} ]] && ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501)) &&
    [[ ${PROMPT_COMMAND@a} == *a* ]]; then
    if [[ " ${PROMPT_COMMAND[*]} " != *" _mfa_exec_prompt_hook "* ]]; then
        PROMPT_COMMAND=(_mfa_exec_prompt_hook "${PROMPT_COMMAND[@]}")
    fi
elif [[ ${PROMPT_COMMAND-} != *_mfa_exec_prompt_hook* ]]; then
    # shellcheck disable=SC2128,SC2178 # the string form
    PROMPT_COMMAND="_mfa_exec_prompt_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi

# --- completion -----------------------------------------------------------------------------

# The words compgen prints are options and names without spaces.
# shellcheck disable=SC2207
function _mfa_exec_complete {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} i
    local opts='--profile --serial-number --token-code --token-command --role-arn
        --role-session-name --external-id --duration --session-duration --region --prompt
        --no-prompt --min-remaining --refresh --no-cache --no-session --policy --policy-arn
        --read-only --tag --source-identity --help'
    COMPREPLY=()
    if [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi
    if [[ ${COMP_WORDS[0]##*/} == mfa-exec ]]; then
        for ((i = 1; i < COMP_CWORD; i++)); do
            case ${COMP_WORDS[i]} in
                --)
                    if ((i + 1 == COMP_CWORD)); then
                        COMPREPLY=($(compgen -c -- "$cur"))
                    else
                        COMPREPLY=($(compgen -f -- "$cur"))
                    fi
                    return 0
                    ;;
                init | completions)
                    COMPREPLY=($(compgen -W 'bash zsh fish powershell' -- "$cur"))
                    return 0
                    ;;
                cache)
                    if [[ $prev == -p || $prev == --profile ]]; then
                        _mfa_exec_complete_profiles "$cur"
                    elif [[ $prev == cache ]]; then
                        COMPREPLY=($(compgen -W 'list clear' -- "$cur"))
                    else
                        COMPREPLY=($(compgen -W '--profile' -- "$cur"))
                    fi
                    return 0
                    ;;
            esac
        done
        opts+=' --print-env --shell --credential-process --server --proxy --version'
        if ((COMP_CWORD == 1)) && [[ $cur != -* ]]; then
            COMPREPLY=($(compgen -W 'cache init completions' -- "$cur"))
            return 0
        fi
    fi
    case $prev in
        -p | --profile) _mfa_exec_complete_profiles "$cur" ;;
        --shell) COMPREPLY=($(compgen -W 'sh bash zsh fish powershell' -- "$cur")) ;;
        --prompt) COMPREPLY=($(compgen -W 'auto terminal zenity kdialog osascript ykman' -- "$cur")) ;;
        --policy) COMPREPLY=($(compgen -f -- "$cur")) ;;
        -t | --token-code | --token-command | --serial-number | --role-arn | --role-session-name | \
            --external-id | -d | --duration | --session-duration | --region | --min-remaining | \
            --policy-arn | --tag | --source-identity) ;;
        *) [[ $cur == -* ]] && COMPREPLY=($(compgen -W "$opts" -- "$cur")) ;;
    esac
    return 0
}

# Profile names from the AWS config files, as mfa-exec reads them.
function _mfa_exec_complete_profiles {
    local _mfa_p _mfa_q
    while IFS= read -r _mfa_p; do
        if [[ $_mfa_p == "$1"* ]]; then
            printf -v _mfa_q '%q' "$_mfa_p"
            COMPREPLY+=("$_mfa_q")
        fi
    done < <(command "${MFA_EXEC_BIN:-mfa-exec}" profiles 2>/dev/null)
}

complete -F _mfa_exec_complete mfa mfa-exec
