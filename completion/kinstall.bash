# bash completion for kinstall and installkernel (kinstall's)            -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/kinstall (and a link named installkernel).
# Commands, options, option values, and for remove/verify/confirm the versions `kinstall list` reports
# on the root the command line names (--root), falling back to <root>/lib/modules.

_kinstall_commands='add stage inspect list status confirm remove prune recover verify help'
_kinstall_options='--root --layout --initramfs --initrd --boot-dir --esp --cmdline --config --keep
  --dry-run --force --json --verbose --help --version'
_kinstall_layouts='auto compat grub bls systemd-boot uki efistub lilo'

# The value of an option already on the line (--opt VALUE or --opt=VALUE), for the version lookups.
_kinstall_option_value() {
    local name=$1 i word
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        word=${COMP_WORDS[i]}
        if [[ ${word} == "${name}" ]]; then
            word=${COMP_WORDS[i + 1]}
            [[ ${word} == = ]] && word=${COMP_WORDS[i + 2]:-}
            printf '%s\n' "${word}"
            return
        elif [[ ${word} == "${name}="* ]]; then
            printf '%s\n' "${word#*=}"
            return
        fi
    done
}

# Installed versions: `kinstall list` (every layout, the ESP included), else the neutral location.
_kinstall_installed_versions() {
    local root args=() opt value
    root=$(_kinstall_option_value --root)
    for opt in --root --layout --boot-dir --esp --config; do
        value=$(_kinstall_option_value "${opt}")
        [[ -n ${value} ]] && args+=("${opt}" "${value}")
    done
    local listed
    if listed=$(timeout 5 kinstall list "${args[@]}" 2>/dev/null); then
        printf '%s\n' "${listed}" | cut -f1 | sort -u
    else
        _kinstall_staged_versions "${root}"
    fi
}

# Versions staged in <root>/lib/modules (those holding a vmlinuz), for add and installkernel.
_kinstall_staged_versions() {
    local dir
    for dir in "${1%/}"/lib/modules/*/vmlinuz; do
        [[ -e ${dir} ]] || continue
        dir=${dir%/vmlinuz}
        printf '%s\n' "${dir##*/}"
    done
}

# cur and prev as if "--opt=value" were "--opt value": readline splits at "=" (COMP_WORDBREAKS).
_kinstall_words() {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    if [[ ${cur} == = ]]; then
        cur=''
    elif [[ ${prev} == = ]] && ((COMP_CWORD >= 2)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi
}

# Completes the value of the option in $1; returns 1 when $1 takes no value.
_kinstall_complete_value() {
    local cur=$2
    case $1 in
        --layout) mapfile -t COMPREPLY < <(compgen -W "${_kinstall_layouts}" -- "${cur}") ;;
        --initramfs) mapfile -t COMPREPLY < <(compgen -W 'auto dracut none' -- "${cur}") ;;
        --root | --boot-dir | --esp | --build-dir | --modules-dir) mapfile -t COMPREPLY < <(compgen -d -- "${cur}") ;;
        --initrd | --config) mapfile -t COMPREPLY < <(compgen -f -- "${cur}") ;;
        --cmdline | --keep | --timeout | --jobs) COMPREPLY=() ;;
        *) return 1 ;;
    esac
    return 0
}

_kinstall() {
    local cur prev
    _kinstall_words
    COMPREPLY=()
    if [[ ${cur} == --*=* ]]; then
        _kinstall_complete_value "${cur%%=*}" "${cur#*=}" && return 0
    fi
    _kinstall_complete_value "${prev}" "${cur}" && return 0

    # The command is the first word that is neither an option nor an option's value.
    local i word command='' positionals=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case ${word} in
            --*=*) ;;
            --root | --layout | --initramfs | --initrd | --boot-dir | --esp | --cmdline | --config | --keep | --timeout | --build-dir | --modules-dir)
                ((i++))
                [[ ${COMP_WORDS[i]:-} == = ]] && ((i++))
                ;;
            -*) ;;
            *) if [[ -z ${command} ]]; then command=${word}; else ((positionals++)); fi ;;
        esac
    done

    local options=${_kinstall_options}
    case ${command} in
        stage) options+=' --build-dir --modules-dir' ;;
        remove) options+=' --keep-modules' ;;
        verify) options+=' --timeout' ;;
        add | '') options+=' --try --make-room' ;;
    esac
    if [[ ${cur} == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${options}" -- "${cur}")
        return 0
    fi

    local root
    case ${command} in
        '') mapfile -t COMPREPLY < <(compgen -W "${_kinstall_commands}" -- "${cur}") ;;
        remove | verify | confirm)
            ((positionals == 0)) && mapfile -t COMPREPLY < <(compgen -W "$(_kinstall_installed_versions)" -- "${cur}") ;;
        add)
            root=$(_kinstall_option_value --root)
            if ((positionals == 0)); then
                mapfile -t COMPREPLY < <(compgen -W "$(_kinstall_staged_versions "${root}")" -- "${cur}")
            elif ((positionals == 1)); then
                mapfile -t COMPREPLY < <(compgen -f -- "${cur}")
            fi
            ;;
        inspect) ((positionals == 0)) && mapfile -t COMPREPLY < <(compgen -f -- "${cur}") ;;
        help) ((positionals == 0)) && mapfile -t COMPREPLY < <(compgen -W "${_kinstall_commands}" -- "${cur}") ;;
    esac
    return 0
}

# installkernel VERSION IMAGE [SYSTEM_MAP] [DIR] [OPTIONS]: the options of add, and --all with --jobs.
_kinstall_installkernel() {
    local cur prev
    _kinstall_words
    COMPREPLY=()
    _kinstall_complete_value "${prev}" "${cur}" && return 0
    if [[ ${cur} == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${_kinstall_options} --try --make-room --all --jobs" -- "${cur}")
        return 0
    fi
    local i positionals=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --*=*) ;;
            --root | --layout | --initramfs | --initrd | --boot-dir | --esp | --cmdline | --config | --keep | --jobs)
                ((i++))
                [[ ${COMP_WORDS[i]:-} == = ]] && ((i++))
                ;;
            -*) ;;
            *) ((positionals++)) ;;
        esac
    done
    case ${positionals} in
        0) mapfile -t COMPREPLY < <(compgen -W "$(_kinstall_staged_versions "$(_kinstall_option_value --root)")" -- "${cur}") ;;
        1 | 2) mapfile -t COMPREPLY < <(compgen -f -- "${cur}") ;;
        3) mapfile -t COMPREPLY < <(compgen -d -- "${cur}") ;;
    esac
    return 0
}

complete -F _kinstall kinstall
complete -F _kinstall_installkernel installkernel
