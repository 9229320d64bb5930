# mfa-exec shell integration for PowerShell, in $PROFILE:
#   mfa-exec init powershell | Out-String | Invoke-Expression
#
#   mfa [OPTIONS]       load credentials into this session (mfa-exec's options: -p, -t, -d, ...);
#                       without -p, the profile the last mfa named: `mfa` alone renews it
#   mfa-off             undo what mfa did, and nothing else
#   mfa-status          profile, session or role, time left; $LASTEXITCODE 1 when none or expired
#   mfa_prompt_info     returns e.g. "[prod 42m]" for a prompt function
#   MFA_EXEC_AUTO_REFRESH=1   in the prompt, reload from mfa-exec's cache when less than
#                       MFA_EXEC_MIN_REMAINING (default 5m) is left, else warn once
#   MFA_EXEC_BIN        the mfa-exec to run (default: mfa-exec on PATH)
#
# As in the other shells: the first mfa saves the variables it changes, mfa-off puts back each
# one still holding what mfa left in it, and mfa-exec always runs with the saved values.
# Functions report failure through $LASTEXITCODE. Importing again keeps the saved state and
# wraps the prompt only once (the wrapper keeps $LASTEXITCODE for the original prompt).

$global:_MfaExecNames = @('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
    'AWS_CREDENTIAL_EXPIRATION', 'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_SECURITY_TOKEN',
    'AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'MFA_EXEC_PROFILE', 'MFA_EXEC_ROLE_ARN')

# Exactly what `--print-env --shell powershell` prints: `$Env:NAME = '...'` (any of the four
# single quotes doubled inside) and `Remove-Item -Path Env:NAME ...` lines for those names.
$global:_MfaExecRe = '\A(?:(?:\$Env:(?:{0}) = ''(?:[^''\u2018-\u201B]|[''\u2018-\u201B]{{2}})*''|Remove-Item -Path Env:(?:{0}) -ErrorAction SilentlyContinue)(?:\n|\z))+\z' -f ($global:_MfaExecNames -join '|')

function global:_MfaExecBin { if ($env:MFA_EXEC_BIN) { $env:MFA_EXEC_BIN } else { 'mfa-exec' } }

function global:_MfaExecSnapshot {
    $snap = @{}
    foreach ($n in $global:_MfaExecNames) {
        $v = [Environment]::GetEnvironmentVariable($n)
        if ($null -ne $v) { $snap[$n] = $v }
    }
    $snap
}

# Puts back the saved value of each variable that still holds what mfa left in it.
function global:_MfaExecUndo {
    if (-not $global:_MfaExecActive) { return }
    foreach ($n in $global:_MfaExecNames) {
        $v = [Environment]::GetEnvironmentVariable($n)
        if ($v -cne $global:_MfaExecLeft[$n]) { continue }
        [Environment]::SetEnvironmentVariable($n, $global:_MfaExecBefore[$n])
    }
}

# mfa-exec --print-env with the variables as they were before mfa; the session's own are kept.
function global:_MfaExecFetch([string[]]$Arguments) {
    $now = _MfaExecSnapshot
    try {
        _MfaExecUndo
        $out = & (_MfaExecBin) --print-env --shell powershell @Arguments
        $code = $LASTEXITCODE
    } finally {
        foreach ($n in $global:_MfaExecNames) { [Environment]::SetEnvironmentVariable($n, $now[$n]) }
    }
    $global:LASTEXITCODE = $code
    if ($code -eq 0) { ($out -join "`n") }
}

function global:_MfaExecApply([string]$Text) {
    if ($Text -cnotmatch $global:_MfaExecRe) {
        [Console]::Error.WriteLine("mfa: unexpected output from $(_MfaExecBin) --print-env; nothing changed")
        return $false
    }
    # Back to the saved values first: a region the last profile had and this one has not must go.
    if ($global:_MfaExecActive) { _MfaExecUndo } else {
        $global:_MfaExecBefore = _MfaExecSnapshot
        $global:_MfaExecActive = $true
    }
    Invoke-Expression $Text
    $global:_MfaExecLeft = _MfaExecSnapshot
    $true
}

function global:mfa {
    $named = $false
    foreach ($a in $args) {
        if ($a -ceq '--') { break }
        if ($a -cin '-h', '--help', '-V', '--version') { & (_MfaExecBin) @args; return }
        if ($a -cin '-p', '--profile' -or $a -clike '-p?*' -or $a -clike '--profile=*') { $named = $true }
    }
    $argv = [string[]]$args
    # No profile named: the one the last mfa named, so that `mfa` alone renews it.
    if (-not $named -and $global:_MfaExecActive -and $null -ne $global:_MfaExecProfile) {
        $argv = @('--profile', $global:_MfaExecProfile) + $argv
    }
    $text = _MfaExecFetch $argv
    if ($LASTEXITCODE -ne 0) { return }
    if (-not (_MfaExecApply $text)) { $global:LASTEXITCODE = 1; return }
    # Kept for auto-refresh, less what must not be repeated: a code is good once.
    $keep = [Collections.Generic.List[string]]::new()
    $global:_MfaExecProfile = $null
    for ($i = 0; $i -lt $argv.Count; $i++) {
        $a = $argv[$i]
        if ($a -cin '-t', '--token-code') { $i++; continue }
        if ($a -clike '-t?*' -or $a -clike '--token-code=*' -or $a -cin '--refresh', '--no-prompt') { continue }
        if ($a -cin '-p', '--profile' -and $i + 1 -lt $argv.Count) { $global:_MfaExecProfile = $argv[$i + 1] }
        elseif ($a -clike '--profile=*' -or $a -clike '-p?*') { $global:_MfaExecProfile = $a -creplace '^(--profile=|-p)', '' }
        $keep.Add($a)
    }
    $global:_MfaExecArgs = $keep.ToArray()
    $global:_MfaExecRetryAt = [DateTimeOffset]::MinValue
    $global:LASTEXITCODE = 0
}

function global:mfa-off {
    if ($global:_MfaExecActive) {
        _MfaExecUndo
        $global:_MfaExecActive = $false
        $global:_MfaExecProfile = $null
        $global:_MfaExecBefore = @{}
        $global:_MfaExecLeft = @{}
    } elseif ($env:MFA_EXEC_PROFILE) {
        # Inherited: drop the credentials mfa-exec marks as its own and leave the rest.
        foreach ($n in 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
            'AWS_CREDENTIAL_EXPIRATION', 'MFA_EXEC_PROFILE', 'MFA_EXEC_ROLE_ARN') {
            [Environment]::SetEnvironmentVariable($n, $null)
        }
    }
    $global:LASTEXITCODE = 0
}

function global:_MfaExecLeft {
    try {
        $exp = [DateTimeOffset]::Parse($env:AWS_CREDENTIAL_EXPIRATION, [Globalization.CultureInfo]::InvariantCulture)
    } catch { return $null }
    $exp - [DateTimeOffset]::UtcNow
}

function global:_MfaExecDuration([TimeSpan]$Left) {
    if ($Left.TotalSeconds -lt 60) { '{0}s' -f [int][Math]::Floor($Left.TotalSeconds) }
    elseif ($Left.TotalSeconds -lt 3600) { '{0}m' -f [int][Math]::Floor($Left.TotalMinutes) }
    else { '{0}h{1:00}m' -f [int][Math]::Floor($Left.TotalHours), $Left.Minutes }
}

# Outside text made safe for the terminal: control characters (an escape sequence in a
# profile name) are shown as \xNN, never sent to the terminal as they are.
function global:_MfaExecSafe([string] $text) {
    [regex]::Replace($text, '\p{Cc}', { param($m) '\x{0:x2}' -f [int][char]$m.Value })
}

function global:mfa-status {
    $left = if ($env:MFA_EXEC_PROFILE) { _MfaExecLeft }
    if ($null -eq $left) {
        [Console]::Error.WriteLine('mfa: no credentials loaded; run mfa')
        $global:LASTEXITCODE = 1
        return
    }
    $kind = if ($env:MFA_EXEC_ROLE_ARN) { "role $(_MfaExecSafe $env:MFA_EXEC_ROLE_ARN)" } else { 'MFA session' }
    $shown = _MfaExecSafe $env:MFA_EXEC_PROFILE
    if ($left.TotalSeconds -le 0) {
        "profile $shown, $kind, expired at $env:AWS_CREDENTIAL_EXPIRATION"
        $global:LASTEXITCODE = 1
        return
    }
    "profile $shown, $kind, $(_MfaExecDuration $left) left (until $env:AWS_CREDENTIAL_EXPIRATION)"
    $global:LASTEXITCODE = 0
}

function global:mfa_prompt_info {
    if (-not $env:MFA_EXEC_PROFILE) { return '' }
    $left = _MfaExecLeft
    if ($null -eq $left) { return '' }
    $shown = _MfaExecSafe $env:MFA_EXEC_PROFILE
    if ($left.TotalSeconds -le 0) { return "[$shown expired]" }
    "[$shown $(_MfaExecDuration $left)]"
}

function global:_MfaExecMinRemaining {
    $text = "$env:MFA_EXEC_MIN_REMAINING" -replace ' ', ''
    if ($text -cmatch '^\d+$') { return [int64]$text }
    $total = 0
    if ($text -cmatch '^(\d+[a-z]+)+$') {
        foreach ($m in [regex]::Matches($text, '(\d+)([a-z]+)')) {
            $n = [int64]$m.Groups[1].Value
            switch -CaseSensitive -Regex ($m.Groups[2].Value) {
                '^(s|secs?|seconds?)$' { $total += $n; break }
                '^(m|mins?|minutes?)$' { $total += $n * 60; break }
                '^(h|hrs?|hours?)$' { $total += $n * 3600; break }
                '^(d|days?)$' { $total += $n * 86400; break }
                default { return 300 }
            }
        }
        return $total
    }
    300
}

function global:_MfaExecAutoRefresh {
    $left = _MfaExecLeft
    if ($null -eq $left -or $left.TotalSeconds -ge (_MfaExecMinRemaining)) { return }
    if ([DateTimeOffset]::UtcNow -lt $global:_MfaExecRetryAt) { return }
    $global:_MfaExecRetryAt = [DateTimeOffset]::UtcNow.AddMinutes(1)
    $was = $env:AWS_CREDENTIAL_EXPIRATION
    $key = $env:AWS_ACCESS_KEY_ID
    $text = _MfaExecFetch (@('--no-prompt') + $global:_MfaExecArgs) 2>$null
    if ($LASTEXITCODE -eq 0 -and (_MfaExecApply $text) -and $env:AWS_ACCESS_KEY_ID -cne $key) { return }
    if ($global:_MfaExecWarned -ceq $was) { return }
    $global:_MfaExecWarned = $was
    $when = if ($left.TotalSeconds -gt 0) { "expire in $(_MfaExecDuration $left)" } else { 'have expired' }
    [Console]::Error.WriteLine("mfa: the credentials of profile $(_MfaExecSafe $env:MFA_EXEC_PROFILE) $when and cannot be renewed without an MFA code: run mfa")
}

if (-not $global:_MfaExecPrompt) {
    $global:_MfaExecPrompt = $function:prompt
    function global:prompt {
        $code = $global:LASTEXITCODE
        if ($env:MFA_EXEC_AUTO_REFRESH -eq '1' -and $global:_MfaExecActive) { _MfaExecAutoRefresh }
        $global:LASTEXITCODE = $code
        & $global:_MfaExecPrompt
    }
}

$global:_MfaExecCompleter = {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | ForEach-Object { $_.ToString() })
    $prev = if ($wordToComplete) { $words[-2] } else { $words[-1] }
    if ($prev -cin '-p', '--profile') {
        $candidates = & (_MfaExecBin) profiles 2>$null
    } else {
        $candidates = '--profile', '--serial-number', '--token-code', '--token-command', '--role-arn',
        '--role-session-name', '--external-id', '--duration', '--session-duration', '--region',
        '--prompt', '--no-prompt', '--min-remaining', '--refresh', '--no-cache', '--no-session',
        '--policy', '--policy-arn', '--read-only', '--tag', '--source-identity', '--help'
        if ($words[0] -like '*mfa-exec*') {
            $candidates += '--print-env', '--shell', '--credential-process', '--server', '--proxy', '--version'
        }
    }
    $candidates | Where-Object { $_ -like "$wordToComplete*" } |
        ForEach-Object { [Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_) }
}
Register-ArgumentCompleter -Native -CommandName mfa, mfa-exec -ScriptBlock $global:_MfaExecCompleter
