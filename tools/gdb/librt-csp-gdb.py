# tools/gdb/librt-csp-gdb.py — gdb commands for programs linked with librt-csp.
#
#   info fibers      every fiber of the running rt::run: id, state, wait reason, name
#   fiber bt N       the backtrace of fiber N, parked or runnable, from its saved context
#
# Load it from ~/.gdbinit (installed as <prefix>/share/librt-csp/gdb/librt-csp-gdb.py):
#   source /usr/local/share/librt-csp/gdb/librt-csp-gdb.py
#
# Needs librt-csp's debug information (it is built with -g) and a live process: `fiber bt`
# points the selected thread's registers at the fiber's saved context for the time of one `bt`,
# then puts them back; it does not work on a core file. x86_64 only (the saved-context layout of
# Boost.Context's jump_fcontext; see read_saved_registers in runtime/dump.cpp).
import gdb

FIBER_CHUNK = 256  # rt::detail::fiber_chunk
STATES = {0: "free", 1: "runnable", 2: "running", 3: "parked", 4: "dead"}


def _atomic(v):
    """The value inside a std::atomic<T> (libstdc++)."""
    for path in (("_M_i",), ("_M_b", "_M_p"), ("_M_base", "_M_i")):
        try:
            x = v
            for p in path:
                x = x[p]
            return x
        except gdb.error:
            continue
    raise gdb.GdbError("librt-csp: cannot read a std::atomic (unexpected libstdc++ layout)")


def _runtime():
    sym = gdb.lookup_global_symbol("rt::detail::g_current_runtime")
    if sym is None:
        try:
            rt = _atomic(gdb.parse_and_eval("'rt::detail::g_current_runtime'"))
        except gdb.error as e:
            raise gdb.GdbError("librt-csp: no debug information for "
                               "rt::detail::g_current_runtime (%s)" % e)
    else:
        rt = _atomic(sym.value())
    if int(rt) == 0:
        raise gdb.GdbError("librt-csp: no runtime is running (rt::run has not started or has returned)")
    return rt.dereference()


def _fibers():
    """Every control block in use, as gdb.Value of type rt::detail::fiber."""
    rt = _runtime()
    chunks = rt["chunks"]["_M_impl"]
    start, finish = chunks["_M_start"], chunks["_M_finish"]
    n = int(finish - start)
    for i in range(n):
        ptr = (start + i).dereference()  # a chunk: FIBER_CHUNK control blocks in a row
        for j in range(FIBER_CHUNK):
            f = (ptr + j).dereference()
            state = int(_atomic(f["state"]))
            if state in (0, 4):
                continue
            yield f


def _describe(f):
    fid = int(_atomic(f["id"]))
    state = STATES.get(int(_atomic(f["state"])), "?")
    if state == "parked":
        reason = str(_atomic(f["reason"])).split("::")[-1].replace("_", " ")
        state = "parked: " + reason
    elif state == "runnable" and int(f["context"]) == 0:
        state = "not started"
    name = f["name"].string(length=32).split("\0")[0]
    return fid, state, name


class InfoFibers(gdb.Command):
    """List librt-csp's fibers: id, state (with wait reason), name."""

    def __init__(self):
        super().__init__("info fibers", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        rows = sorted((_describe(f) for f in _fibers()), key=lambda r: r[0])
        for fid, state, name in rows:
            gdb.write("fiber %d [%s]%s\n" % (fid, state, (' "%s"' % name) if name else ""))


REGS = ["rsp", "rip", "rbp", "rbx", "r12", "r13", "r14", "r15"]


class FiberCommand(gdb.Command):
    """librt-csp fiber commands; see `fiber bt`."""

    def __init__(self):
        super().__init__("fiber", gdb.COMMAND_STACK, prefix=True)


class FiberBt(gdb.Command):
    """fiber bt N: backtrace of fiber N (parked or runnable) from its saved context."""

    def __init__(self):
        super().__init__("fiber bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv:
            raise gdb.GdbError("usage: fiber bt N")
        want = int(argv[0], 0)
        target = None
        for f in _fibers():
            if int(_atomic(f["id"])) == want:
                target = f
                break
        if target is None:
            raise gdb.GdbError("no fiber %d" % want)
        fid, state, _ = _describe(target)
        fctx = int(target["context"])
        if state.startswith("running"):
            raise gdb.GdbError("fiber %d is running: its stack is that of its worker thread "
                               "(use `thread apply all bt`)" % fid)
        if fctx == 0:
            raise gdb.GdbError("fiber %d has not started: no stack yet" % fid)
        u64 = gdb.lookup_type("unsigned long").pointer()

        def word(off):
            return int(gdb.Value(fctx + off).cast(u64).dereference())

        # jump_fcontext's layout: r12 r13 r14 r15 rbx rbp rip at fctx+8..+0x38; rsp = fctx+0x40.
        new = {"r12": word(0x08), "r13": word(0x10), "r14": word(0x18), "r15": word(0x20),
               "rbx": word(0x28), "rbp": word(0x30), "rip": word(0x38), "rsp": fctx + 0x40}
        gdb.execute("frame 0", to_string=True)
        saved = {r: int(gdb.parse_and_eval("$" + r)) for r in REGS}
        try:
            for r in REGS:
                gdb.execute("set $%s = %d" % (r, new[r]), to_string=True)
            gdb.execute("bt", from_tty=from_tty)
        finally:
            gdb.execute("frame 0", to_string=True)
            for r in REGS:
                gdb.execute("set $%s = %d" % (r, saved[r]), to_string=True)


InfoFibers()
FiberCommand()
FiberBt()
