"""``flux.compat36``: ``strsignal()`` as flux-core gives it (from before Python 3.8 had
``signal.strsignal``): the description of a signal, ValueError for a number that is not
a signal."""

import signal

_DESCRIPTIONS = {
    "SIGHUP": "Hangup", "SIGINT": "Interrupt", "SIGQUIT": "Quit",
    "SIGILL": "Illegal instruction", "SIGTRAP": "Trace/breakpoint trap",
    "SIGABRT": "Aborted", "SIGIOT": "Aborted", "SIGBUS": "Bus error",
    "SIGFPE": "Floating point exception", "SIGKILL": "Killed",
    "SIGUSR1": "User defined signal 1", "SIGSEGV": "Segmentation Fault",
    "SIGUSR2": "User defined signal 2", "SIGPIPE": "Broken pipe", "SIGALRM": "Alarm clock",
    "SIGTERM": "Terminated", "SIGSTKFLT": "Stack fault", "SIGCHLD": "Child exited",
    "SIGCONT": "Continued", "SIGSTOP": "Stopped (signal)", "SIGTSTP": "Stopped",
    "SIGTTIN": "Stopped (tty input)", "SIGTTOU": "Stopped (tty output)",
    "SIGURG": "Urgent I/O condition", "SIGXCPU": "CPU time limit exceeded",
    "SIGXFSZ": "File size limit exceeded", "SIGVTALRM": "Virtual timer expired",
    "SIGPROF": "Profiling timer expired", "SIGWINCH": "Window changed",
    "SIGIO": "I/O possible", "SIGPOLL": "I/O possible", "SIGPWR": "Power failure",
    "SIGSYS": "Bad system call",
}

#: signal number -> description, for the signals this platform has
_BY_NUMBER = {}
for _name, _text in _DESCRIPTIONS.items():
    _num = getattr(signal, _name, None)
    if _num is not None:
        _BY_NUMBER.setdefault(int(_num), _text)


def strsignal(signum):
    """The description of signal ``signum`` (``"Hangup"`` for SIGHUP); ValueError if it
    is not a known signal."""
    try:
        return _BY_NUMBER[int(signum)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{signum!r} is not a known signal number") from None


__all__ = ["strsignal"]
