// runtime/dump.cpp — fiber dumps (rt::dump_fibers, SIGQUIT, deadlock and panic reports).
//
// What a dump shows: every fiber, in id order, as Go prints a goroutine (format in rt/debug.hpp).
//
// Reading a parked fiber's stack. A suspended fiber's registers are in its saved Boost.Context
// (read_saved_registers below knows the layout); its stack is unwound from there with libdw's
// unwinder (CFI, so it works in optimised code without frame pointers), reading memory through a
// callback that refuses anything outside the fiber's stack: a corrupt stack ends the trace
// instead of crashing the dump. The fiber is never resumed.
//
// Safety while other workers run. A dump may run while the fiber is woken and resumed elsewhere.
// Per fiber, the dump does
//     dump_claim = true;  s = state;  if s is parked or runnable: read the stack;  dump_claim =
//     false
// and whoever resumes a fiber does (publish_running, fiber.hpp)
//     state = running (exchange);  while (dump_claim) pause;  switch into it
// All four accesses are seq_cst. Of two store-then-load pairs on two locations, at least one load
// sees the other's store (the Dekker argument). If the dump's load does not see `running`, the
// resumer's load of dump_claim comes after the dump's store in the single total order, so the
// resumer waits until the claim is released — after the stack was read. If the dump sees
// `running`, it reads no stack ("stack unavailable"). `parked` and `runnable` are published only
// after the fiber is off its stack (finish_switch_out, which runs once the switch completed; a
// waker's `runnable` comes after a `parked`), with release stores that the dump's seq_cst load
// acquires: the saved context and the stack contents are visible to the dump. A dump serialises
// with other dumps (dump_mu), so one dump's release cannot end another's claim. Symbolising
// happens after every claim is released: resumers wait only for the unwinding itself.
//
// Symbolising: libdw (elfutils) with the modules of /proc/self/maps, each object's own debug
// information only (no debuginfod, no network), inlined calls expanded into frames of their own
// as Go shows them.
#include "dump.hpp"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <ostream>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fatal.hpp"
#include "fiber.hpp"
#include "rt/debug.hpp"
#include "rt/this_fiber.hpp"
#include "scheduler.hpp"

#ifndef RT_RUNTIME_SOURCE_DIR
#define RT_RUNTIME_SOURCE_DIR "/runtime/"
#endif

namespace rt::detail {
namespace {

constexpr std::size_t max_frames = 100;  // per fiber, as Go's traceback stops at 100

// ---- registers -------------------------------------------------------------------------------

// The callee-saved registers of a suspended context, and where it resumes.
struct saved_registers {
  std::uint64_t rbx, rbp, rsp, r12, r13, r14, r15, rip;
};

#if defined(__x86_64__)
// The one place that knows Boost.Context's saved-context layout (x86_64 System V, jump_fcontext
// of boost 1.74, checked by disassembling it). A suspended fiber's context is one pointer, fctx,
// into its own stack, where jump_fcontext pushed:
//   fctx+0x00 mxcsr (4 bytes) and x87 control word   fctx+0x08 r12   +0x10 r13   +0x18 r14
//   fctx+0x20 r15   +0x28 rbx   +0x30 rbp   +0x38 the return address (rip)
// and the stack pointer after its `ret`-like jump is fctx+0x40. `read` is a checked reader.
template <class Read>
bool read_saved_registers(boost::context::detail::fcontext_t ctx, Read read, saved_registers& out) {
  const auto fctx = reinterpret_cast<std::uint64_t>(ctx);
  if (fctx == 0) return false;
  std::uint64_t* slots[] = {&out.r12, &out.r13, &out.r14, &out.r15, &out.rbx, &out.rbp, &out.rip};
  for (std::size_t i = 0; i < 7; ++i) {
    if (!read(fctx + 8 * (i + 1), *slots[i])) return false;
  }
  out.rsp = fctx + 0x40;
  return true;
}

// Stores the caller's callee-saved registers, its return address and its stack pointer after
// the return into r (layout of saved_registers): the calling thread as if it had just suspended.
extern "C" void rt_capture_registers(saved_registers* r) noexcept;
asm(R"(
  .text
  .p2align 4
  .type rt_capture_registers,@function
rt_capture_registers:
  .cfi_startproc
  movq %rbx, 0x00(%rdi)
  movq %rbp, 0x08(%rdi)
  leaq 8(%rsp), %rax
  movq %rax, 0x10(%rdi)
  movq %r12, 0x18(%rdi)
  movq %r13, 0x20(%rdi)
  movq %r14, 0x28(%rdi)
  movq %r15, 0x30(%rdi)
  movq (%rsp), %rax
  movq %rax, 0x38(%rdi)
  ret
  .cfi_endproc
  .size rt_capture_registers, .-rt_capture_registers
)");
constexpr bool have_unwinder = true;
#else
constexpr bool have_unwinder = false;
#endif

// ---- libdw session ---------------------------------------------------------------------------

// Each object's own debug information only: dwfl_standard_find_debuginfo may ask debuginfod
// servers (network) when DEBUGINFOD_URLS is set, which a crash report must never wait for.
int own_debuginfo_only(Dwfl_Module*, void**, const char*, Dwarf_Addr, const char*, const char*,
                       GElf_Word, char**) {
  return -1;
}

const Dwfl_Callbacks proc_callbacks = {
    dwfl_linux_proc_find_elf,
    own_debuginfo_only,
    nullptr,
    nullptr,
};

struct address_range {
  std::uint64_t lo, hi;
};

// What the unwinder callbacks read: the one pseudo-thread being unwound now.
struct unwind_target {
  saved_registers regs{};
  address_range stack{0, 0};
  std::vector<std::uint64_t>* pcs = nullptr;
};

// Reads one word at addr if it lies in the target's stack; false (and nothing read) anywhere
// else: a corrupt saved context or frame ends the trace instead of faulting. (libdw reads the
// CFI from the object files themselves, not through this.) Not instrumented by ASan: a parked
// stack holds ASan's redzones.
__attribute__((no_sanitize("address"))) bool checked_read(const unwind_target& t,
                                                          std::uint64_t addr,
                                                          std::uint64_t& out) noexcept {
  if (addr + 8 < addr || addr < t.stack.lo || addr + 8 > t.stack.hi) return false;
  out = *reinterpret_cast<const volatile std::uint64_t*>(addr);
  return true;
}

pid_t next_thread(Dwfl*, void* arg, void** thread_argp) {
  // One pseudo-thread; getthread_frames finds it through get_thread below.
  *thread_argp = arg;
  return 0;
}

bool get_thread(Dwfl*, pid_t tid, void* arg, void** thread_argp) {
  *thread_argp = arg;
  return tid == 1;
}

bool memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
  std::uint64_t v = 0;
  if (!checked_read(*static_cast<unwind_target*>(arg), addr, v)) return false;
  *result = v;
  return true;
}

bool set_initial_registers(Dwfl_Thread* thread, void* arg) {
  const saved_registers& r = static_cast<unwind_target*>(arg)->regs;
  // x86_64 DWARF numbering: 3 rbx, 6 rbp, 7 rsp, 12-15 r12-r15, 16 the return address (rip).
  // Only callee-saved registers are known; the others stay undefined.
  const Dwarf_Word rbx = r.rbx;
  const Dwarf_Word rbp_rsp[2] = {r.rbp, r.rsp};
  const Dwarf_Word r12_rip[5] = {r.r12, r.r13, r.r14, r.r15, r.rip};
  return dwfl_thread_state_registers(thread, 3, 1, &rbx) &&
         dwfl_thread_state_registers(thread, 6, 2, rbp_rsp) &&
         dwfl_thread_state_registers(thread, 12, 5, r12_rip);
}

const Dwfl_Thread_Callbacks thread_callbacks = {
    next_thread, get_thread, memory_read, set_initial_registers, nullptr, nullptr,
};

int on_frame(Dwfl_Frame* frame, void* arg) {
  auto* t = static_cast<unwind_target*>(arg);
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
  // Every frame's pc is a return address (the first one too: where the suspended context
  // resumes, after its call): the call is at pc - 1.
  if (pc == 0) return DWARF_CB_ABORT;
  t->pcs->push_back(pc - 1);
  return t->pcs->size() >= max_frames + 16 ? DWARF_CB_ABORT : DWARF_CB_OK;
}

// One libdw view of this process: its modules, and an unwinder over unwind_target.
class dwfl_session {
 public:
  dwfl_session() {
    dwfl_ = dwfl_begin(&proc_callbacks);
    if (!dwfl_) return;
    dwfl_report_begin(dwfl_);
    dwfl_linux_proc_report(dwfl_, getpid());
    dwfl_report_end(dwfl_, nullptr, nullptr);
  }
  ~dwfl_session() {
    if (dwfl_) dwfl_end(dwfl_);
  }
  dwfl_session(const dwfl_session&) = delete;
  dwfl_session& operator=(const dwfl_session&) = delete;

  // The return addresses (each minus one: a call site) of the stack that `regs` suspended,
  // reading memory only in [stack_lo, stack_hi).
  std::vector<std::uint64_t> unwind(const saved_registers& regs, std::uint64_t stack_lo,
                                    std::uint64_t stack_hi) {
    std::vector<std::uint64_t> pcs;
    if (!dwfl_ || !have_unwinder) return pcs;
    if (!attached_) {
      attached_ = true;
      attach_ok_ = dwfl_attach_state(dwfl_, nullptr, getpid(), &thread_callbacks, &target_);
    }
    if (!attach_ok_) return pcs;
    target_.regs = regs;
    target_.stack = {stack_lo, stack_hi};
    target_.pcs = &pcs;
    dwfl_getthread_frames(dwfl_, 1, on_frame, &target_);
    target_.pcs = nullptr;
    return pcs;
  }

  bool read_registers(boost::context::detail::fcontext_t ctx, std::uint64_t lo, std::uint64_t hi,
                      saved_registers& out) {
#if defined(__x86_64__)
    unwind_target t;
    t.stack = {lo, hi};
    return read_saved_registers(
        ctx, [&](std::uint64_t a, std::uint64_t& v) { return checked_read(t, a, v); }, out);
#else
    return false;
#endif
  }

  Dwfl* dwfl() const noexcept {
    return dwfl_;
  }

 private:
  Dwfl* dwfl_ = nullptr;
  bool attached_ = false;
  bool attach_ok_ = false;
  unwind_target target_;
};

// ---- symbolising -----------------------------------------------------------------------------

struct frame_info {
  std::string function;  // demangled; "?" when unknown
  std::string location;  // "file:line", or "object+0xoffset" without line information
  std::string file;      // empty without line information
  std::string object;
};

std::string demangle(const char* s) {
  if (!s) return "?";
  int status = 0;
  char* d = abi::__cxa_demangle(s, nullptr, nullptr, &status);
  std::string out = status == 0 && d ? d : s;
  std::free(d);
  return out;
}

// The name of a subprogram or inlined-subroutine DIE: its linkage name demangled (qualified,
// with parameter types), else its plain name.
std::string die_function_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
  if (!linkage)
    linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
  if (linkage) return demangle(linkage);
  const char* name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
  if (!name) return "?";
  // No linkage name (a lambda's operator()): qualify the name by the scopes that enclose the
  // function's declaration, e.g. main::<lambda()>::operator().
  Dwarf_Die origin = *die;
  for (int i = 0; i < 4; ++i) {
    Dwarf_Attribute a;
    Dwarf_Die next;
    Dwarf_Attribute* ref = dwarf_attr(&origin, DW_AT_abstract_origin, &a);
    if (!ref) ref = dwarf_attr(&origin, DW_AT_specification, &a);
    if (!ref || !dwarf_formref_die(ref, &next)) break;
    origin = next;
  }
  std::string qualified = name;
  Dwarf_Die* scopes = nullptr;
  const int n = dwarf_getscopes_die(&origin, &scopes);
  for (int i = 1; i < n; ++i) {
    const int tag = dwarf_tag(&scopes[i]);
    if (tag != DW_TAG_subprogram && tag != DW_TAG_structure_type && tag != DW_TAG_class_type &&
        tag != DW_TAG_namespace) {
      continue;
    }
    const char* outer = dwarf_diename(&scopes[i]);
    // An unnamed class here is a lambda's closure type.
    const char* unnamed = tag == DW_TAG_namespace ? "(anonymous namespace)" : "<lambda>";
    qualified = std::string(outer ? outer : unnamed) + "::" + qualified;
  }
  std::free(scopes);
  return qualified;
}

// Appends to chain the DIEs under parent whose code contains pc (CU-relative), outermost first.
// dwarf_getscopes does not look inside every kind of DIE (it misses, for one, the static
// invoker of a lambda defined in a function), so this walks the tree itself: it descends into
// everything except code-bearing DIEs whose ranges exclude pc.
bool find_scopes(Dwarf_Die* parent, Dwarf_Addr pc, std::vector<Dwarf_Die>& chain, int depth = 0) {
  if (depth > 64) return false;
  Dwarf_Die child;
  if (dwarf_child(parent, &child) != 0) return false;
  do {
    const int tag = dwarf_tag(&child);
    const bool code =
        tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block;
    if (code && (dwarf_hasattr(&child, DW_AT_low_pc) || dwarf_hasattr(&child, DW_AT_ranges))) {
      if (dwarf_haspc(&child, pc) == 1) {
        chain.push_back(child);
        find_scopes(&child, pc, chain, depth + 1);
        return true;
      }
      continue;
    }
    if (dwarf_haschildren(&child) && find_scopes(&child, pc, chain, depth + 1)) return true;
  } while (dwarf_siblingof(&child, &child) == 0);
  return false;
}

// The frames at call site pc (innermost first): the inlined calls at pc, then the function
// that contains them.
std::vector<frame_info> symbolise_pc(Dwfl* dwfl, std::uint64_t pc) {
  std::vector<frame_info> out;
  Dwfl_Module* mod = dwfl ? dwfl_addrmodule(dwfl, pc) : nullptr;
  char raw[64];
  std::snprintf(raw, sizeof raw, "0x%llx", static_cast<unsigned long long>(pc));
  if (!mod) {
    out.push_back({"?", raw, "", ""});
    return out;
  }
  Dwarf_Addr base = 0;
  const char* obj_name =
      dwfl_module_info(mod, nullptr, &base, nullptr, nullptr, nullptr, nullptr, nullptr);
  std::string object = obj_name ? obj_name : "?";
  char off[64];
  std::snprintf(off, sizeof off, "+0x%llx", static_cast<unsigned long long>(pc - base));

  const char* file = nullptr;
  int line = 0;
  if (Dwfl_Line* l = dwfl_module_getsrc(mod, pc)) {
    file = dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr);
  }
  std::string loc_file = file ? file : "";
  int loc_line = line;
  Dwarf_Addr bias = 0;
  if (Dwarf_Die* cu = dwfl_module_addrdie(mod, pc, &bias)) {
    std::vector<Dwarf_Die> chain;  // outermost first
    find_scopes(cu, pc - bias, chain);
    Dwarf_Files* files = nullptr;
    std::size_t nfiles = 0;
    if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0) files = nullptr;
    for (std::size_t k = chain.size(); k-- > 0;) {
      Dwarf_Die* s = &chain[k];
      const int tag = dwarf_tag(s);
      if (tag == DW_TAG_subprogram) break;
      if (tag != DW_TAG_inlined_subroutine) continue;
      out.push_back({die_function_name(s),
                     loc_file.empty() ? object + off : loc_file + ":" + std::to_string(loc_line),
                     loc_file, object});
      // The caller's location: where this inlined call was made.
      Dwarf_Attribute attr;
      Dwarf_Word v = 0;
      loc_file.clear();
      loc_line = 0;
      if (files && dwarf_formudata(dwarf_attr(s, DW_AT_call_file, &attr), &v) == 0) {
        if (const char* f = dwarf_filesrc(files, v, nullptr, nullptr)) loc_file = f;
      }
      if (dwarf_formudata(dwarf_attr(s, DW_AT_call_line, &attr), &v) == 0) {
        loc_line = static_cast<int>(v);
      }
    }
  }
  const char* sym = dwfl_module_addrname(mod, pc);
  out.push_back({demangle(sym),
                 loc_file.empty() ? object + off : loc_file + ":" + std::to_string(loc_line),
                 loc_file, object});
  return out;
}

// Whether a demangled function name is in the scope `prefix`, with or without a return type
// before it ("void boost::context::detail::fiber_entry<...>(...)").
bool names_scope(const std::string& fn, const char* prefix) {
  const std::size_t pos = fn.find(prefix);
  if (pos == std::string::npos) return false;
  return pos == 0 || (fn[pos - 1] == ' ' && pos < fn.find('('));
}

// A frame that belongs to the runtime's machinery rather than to the user's code: librt-csp's
// own sources, its detail headers, Boost.Context.
bool runtime_frame(const frame_info& f) {
  return f.file.find(RT_RUNTIME_SOURCE_DIR) != std::string::npos ||
         f.file.find("/include/rt/detail/") != std::string::npos ||
         f.file.find("/boost/context/") != std::string::npos ||
         f.object.find("libboost_context") != std::string::npos ||
         names_scope(f.function, "rt::detail::") || names_scope(f.function, "boost::context::") ||
         names_scope(f.function, "rt::dump_fibers(");
}

// std::invoke's frames, through which the runtime calls a fiber's function.
bool invoke_frame(const frame_info& f) {
  // By name, or by its file: GCC names some with their return type first ("void
  // std::__invoke_impl").
  return f.function.rfind("std::__invoke", 0) == 0 || f.function.rfind("std::invoke", 0) == 0 ||
         f.file.find("/bits/invoke.h") != std::string::npos;
}

// Go hides the runtime's frames (gopark, chanrecv) at the top of a goroutine's stack and the
// ones below its function (goexit). Here the frames shown are the first run of frames that are
// not the runtime's (librt-csp's runtime/ sources, rt/detail headers, Boost.Context): so the
// innermost shown is the user's call into librt-csp (e.g. rt::chan<int>::recv() in rt/chan.hpp)
// or the user's own function, and the outermost is the fiber's function — less the rt::go and
// rt::run thunks (rt/runtime.hpp) and std::invoke frames that lead to it.
std::vector<frame_info> visible_frames(std::vector<frame_info> frames) {
  std::size_t first = 0;
  while (first < frames.size() && runtime_frame(frames[first])) ++first;
  std::size_t last = first;
  while (last < frames.size() && !runtime_frame(frames[last])) ++last;
  while (last > first &&
         (frames[last - 1].file.find("/include/rt/runtime.hpp") != std::string::npos ||
          invoke_frame(frames[last - 1]) || frames[last - 1].function == "?")) {
    --last;
  }
  return {frames.begin() + static_cast<std::ptrdiff_t>(first),
          frames.begin() + static_cast<std::ptrdiff_t>(last)};
}

class symboliser {
 public:
  explicit symboliser(Dwfl* dwfl) : dwfl_(dwfl) {}
  const std::vector<frame_info>& at(std::uint64_t pc) {
    auto it = cache_.find(pc);
    if (it == cache_.end()) it = cache_.emplace(pc, symbolise_pc(dwfl_, pc)).first;
    return it->second;
  }
  // Go's two lines per frame: "function\n\tfile:line\n".
  std::string stack_text(const std::vector<std::uint64_t>& pcs) {
    std::vector<frame_info> frames;
    for (std::uint64_t pc : pcs) {
      const auto& fs = at(pc);
      frames.insert(frames.end(), fs.begin(), fs.end());
    }
    frames = visible_frames(std::move(frames));
    std::string out;
    const std::size_t shown = std::min(frames.size(), max_frames);
    for (std::size_t i = 0; i < shown; ++i) {
      out += frames[i].function + "\n\t" + frames[i].location + "\n";
    }
    if (frames.size() > shown) out += "...additional frames elided...\n";
    return out;
  }
  // "created by F\n\tfile:line" for a spawn-site return address.
  std::string created_by(void* spawn_pc) {
    if (!spawn_pc) return "created by rt::run";
    const auto pc = reinterpret_cast<std::uint64_t>(spawn_pc) - 1;
    const auto& fs = at(pc);
    // Innermost first: the first frame outside librt-csp's headers is the code calling rt::go.
    for (std::size_t i = 0; i < fs.size(); ++i) {
      const bool ours = fs[i].file.find("/include/rt/") != std::string::npos;
      if (ours && i + 1 < fs.size()) continue;
      return "created by " + fs[i].function + "\n\t" + fs[i].location;
    }
    return "created by ?";
  }

 private:
  Dwfl* dwfl_;
  std::unordered_map<std::uint64_t, std::vector<frame_info>> cache_;
};

// ---- collecting fibers -----------------------------------------------------------------------

// What a dump shows of one fiber, copied while it could not run.
struct fiber_snapshot {
  std::uint64_t id = 0;
  fiber_state state = fiber_state::free;
  bool started = false;
  bool self = false;
  wait_reason reason = wait_reason::none;
  std::int64_t parked_at = 0;
  void* spawn_pc = nullptr;
  char name[fiber::name_bytes] = {};
  std::vector<std::uint64_t> pcs;
  const char* note = nullptr;  // why there is no stack, if there is none
};

void copy_name(const fiber* f, char (&out)[fiber::name_bytes]) {
  for (std::size_t i = 0; i + 1 < fiber::name_bytes; ++i) {
    out[i] = std::atomic_ref<char>(const_cast<char&>(f->name[i])).load(std::memory_order_relaxed);
    if (out[i] == '\0') return;
  }
  out[fiber::name_bytes - 1] = '\0';
}

std::mutex& dump_mu() {
  static std::mutex m;
  return m;
}

// The stack bounds of the calling thread (when it is not running a fiber).
address_range thread_stack() {
  address_range r{0, 0};
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    r = {reinterpret_cast<std::uint64_t>(addr), reinterpret_cast<std::uint64_t>(addr) + size};
    pthread_attr_destroy(&attr);
  }
  return r;
}

// Runs f on a thread of its own when called on a fiber: libdw needs more stack than a fiber's
// 64 KiB (the default). The fiber's worker waits meanwhile, as a dump is a debugging aid.
template <class F>
void on_thread_stack(F f) {
  if (!current_fiber()) {
    f();
    return;
  }
  try {
    std::thread(f).join();
  } catch (const std::system_error&) {
    // No thread to be had: leave the output empty rather than overflow the fiber's stack.
  }
}

// self_regs: the calling fiber's registers, captured in a frame that stays live meanwhile.
std::vector<fiber_snapshot> collect(runtime& rt, dwfl_session& s, const fiber* self,
                                    const saved_registers& self_regs) {
  std::vector<fiber*> blocks;
  {
    std::lock_guard lk(rt.chunks_mu);  // chunks are never freed while rt lives
    for (auto& c : rt.chunks) {
      for (std::size_t i = 0; i < fiber_chunk; ++i) blocks.push_back(&c[i]);
    }
  }
  std::vector<fiber_snapshot> out;
  std::vector<std::uint64_t> self_pcs;
  if (self) {
    const auto lo = reinterpret_cast<std::uint64_t>(self->san.stack_bottom);
    self_pcs = s.unwind(self_regs, lo, lo + self->san.stack_size);
  }
  std::lock_guard lk(dump_mu());
  for (fiber* f : blocks) {
    if (f->state.load(std::memory_order_relaxed) == fiber_state::free) continue;  // a hint only
    fiber_snapshot snap;
    // The claim: see the top of this file for why the fiber cannot be resumed until it is
    // released when the state read after it is not `running`.
    f->dump_claim.store(true);
    snap.state = f->state.load();
    if (snap.state != fiber_state::free && snap.state != fiber_state::dead) {
      snap.id = f->id.load(std::memory_order_relaxed);
      snap.spawn_pc = f->spawn_pc.load(std::memory_order_relaxed);
      copy_name(f, snap.name);
      snap.self = f == self;
      if (snap.state == fiber_state::running) {
        snap.started = true;
        if (snap.self) {
          snap.pcs = self_pcs;
        } else {
          snap.note = "fiber running on other thread; stack unavailable";
        }
      } else {
        snap.reason = f->reason.load(std::memory_order_relaxed);
        snap.parked_at = f->parked_at.load(std::memory_order_relaxed);
        snap.started = f->context != nullptr;
        if (snap.started) {
          saved_registers regs{};
          const auto lo = reinterpret_cast<std::uint64_t>(f->san.stack_bottom);
          const auto hi = lo + f->san.stack_size;
          if (!have_unwinder) {
            snap.note = "stack unavailable on this architecture";
          } else if (s.read_registers(f->context, lo, hi, regs)) {
            snap.pcs = s.unwind(regs, lo, hi);
          } else {
            snap.note = "stack unavailable: saved context unreadable";
          }
        }
      }
    }
    f->dump_claim.store(false);
    if (snap.state != fiber_state::free && snap.state != fiber_state::dead) {
      out.push_back(std::move(snap));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const fiber_snapshot& a, const fiber_snapshot& b) { return a.id < b.id; });
  return out;
}

// Go's "[chan receive, 5 minutes]"; shorter waits in ms or s, since fibers rarely wait minutes
// in the programs one dumps.
std::string wait_text(std::int64_t parked_at, std::int64_t dump_time) {
  if (parked_at == 0) return "";
  const std::int64_t ns = std::max<std::int64_t>(0, dump_time - parked_at);
  const std::int64_t ms = ns / 1'000'000;
  if (ms < 1000) return ", " + std::to_string(ms) + " ms";
  if (ms < 120'000) return ", " + std::to_string(ms / 1000) + " s";
  return ", " + std::to_string(ms / 60'000) + " minutes";
}

std::string header(const fiber_snapshot& f, std::int64_t dump_time) {
  std::string h = "fiber " + std::to_string(f.id);
  if (f.name[0] != '\0') h += " \"" + std::string(f.name) + "\"";
  h += " [";
  switch (f.state) {
    case fiber_state::running:
      h += "running";
      break;
    case fiber_state::parked:
      h += wait_reason_text(f.reason);
      h += wait_text(f.parked_at, dump_time);
      break;
    default:
      h += f.started ? "runnable" : "not started";
      break;
  }
  return h + "]:\n";
}

}  // namespace

[[gnu::noinline]] std::string format_fiber_dump(runtime& rt, const fiber* self, std::size_t limit) {
  saved_registers self_regs{};
#if defined(__x86_64__)
  // Here, in a frame that stays live while the stack is read (possibly from another thread).
  if (self) rt_capture_registers(&self_regs);
#endif
  std::string out;
  on_thread_stack([&] {
    dwfl_session s;
    // Waits are measured to the moment the dump began, not to when each fiber's stack has been
    // read and symbolised (that takes milliseconds per fiber).
    const std::int64_t dump_time = now_ns();
    std::vector<fiber_snapshot> fibers = collect(rt, s, self, self_regs);
    // Every claim is released: symbolise at leisure.
    symboliser sym(s.dwfl());
    const std::size_t shown = std::min(limit, fibers.size());
    for (std::size_t i = 0; i < shown; ++i) {
      const fiber_snapshot& f = fibers[i];
      if (i > 0) out += "\n";
      out += header(f, dump_time);
      if (f.note) out += std::string("\t") + f.note + "\n";
      out += sym.stack_text(f.pcs);
      out += sym.created_by(f.spawn_pc) + "\n";
    }
    if (fibers.size() > shown) {
      out += "\n... and " + std::to_string(fibers.size() - shown) + " more fibers\n";
    }
  });
  return out;
}

[[gnu::noinline]] std::string format_current_stack(const fiber* f) {
  saved_registers regs{};
#if defined(__x86_64__)
  rt_capture_registers(&regs);
#endif
  address_range r =
      f && f->san.stack_bottom
          ? address_range{reinterpret_cast<std::uint64_t>(f->san.stack_bottom),
                          reinterpret_cast<std::uint64_t>(f->san.stack_bottom) + f->san.stack_size}
          : thread_stack();
  std::string out;
  on_thread_stack([&] {
    dwfl_session s;
    std::vector<std::uint64_t> pcs = s.unwind(regs, r.lo, r.hi);
    symboliser sym(s.dwfl());
    out = sym.stack_text(pcs) +
          sym.created_by(f ? f->spawn_pc.load(std::memory_order_relaxed) : nullptr);
  });
  return out;
}

std::string fiber_name(const fiber* f) {
  char name[fiber::name_bytes];
  copy_name(f, name);
  return name;
}

std::string describe_spawn_site(void* spawn_pc) {
  std::string s;
  on_thread_stack([&] {
    dwfl_session session;
    symboliser sym(session.dwfl());
    s = sym.created_by(spawn_pc);  // "created by FUNCTION\n\tFILE:LINE"
  });
  if (s.rfind("created by ", 0) == 0) s.erase(0, 11);
  if (const auto tab = s.find("\n\t"); tab != std::string::npos)
    s = s.substr(tab + 2) + " in " + s.substr(0, tab);
  return s;
}

// ---- SIGQUIT ---------------------------------------------------------------------------------
//
// A signal handler may do almost nothing (no allocation, no locks), and a dump needs both. So
// the handler only writes a byte to a pipe, and a small thread of the runtime's, blocked reading
// that pipe, does the dump and exits with status 2. A thread of its own, rather than a worker's
// idle loop, because SIGQUIT is most wanted when every worker is stuck in a fiber that never
// yields. rt::run starts it before the workers and stops it before shutting down; the deadlock
// check counts it (sigquit_watcher_threads).

namespace {

std::atomic<int> quit_fd{-1};  // the pipe's write end while a watcher runs
struct watcher {
  // Read by the deadlock check on worker threads (relaxed: it only sizes the thread count, and
  // it changes only before the workers start and after main has returned).
  std::atomic<bool> active{false};
  int fds[2] = {-1, -1};
  struct sigaction previous {};
  std::thread thread;
};
watcher g_watcher;  // touched only by rt::run's thread (one runtime at a time)

void sigquit_handler(int) {
  const int saved = errno;
  const int fd = quit_fd.load(std::memory_order_relaxed);  // relaxed: a plain int's value
  const char q = 'q';
  if (fd >= 0) (void)!::write(fd, &q, 1);
  errno = saved;
}

bool sigquit_enabled(const runtime& rt) {
  if (!rt.opts.dump_on_sigquit) return false;
  const char* env = std::getenv("RT_SIGQUIT");
  return !(env && std::strcmp(env, "0") == 0);
}

}  // namespace

void start_sigquit_watcher(runtime& rt) {
  if (!sigquit_enabled(rt) || g_watcher.active.load(std::memory_order_relaxed)) return;
  if (pipe2(g_watcher.fds, O_CLOEXEC) != 0) return;
  const int rd = g_watcher.fds[0];
  g_watcher.thread = std::thread([rd, &rt] {
    // Signals go to the other threads: this one must stay free to dump.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    char c = 0;
    for (;;) {
      const ssize_t n = ::read(rd, &c, 1);
      if (n == 1) break;
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    if (c != 'q') return;  // 's': rt::run is stopping
    const std::int64_t found_at_ns = now_ns();
    std::string text = "SIGQUIT: quit\n\n" + format_fiber_dump(rt, nullptr, 10000);
    fatal_report(text, "SIGQUIT", found_at_ns);  // and the flight recording, when RT_TRACE=flight
  });
  quit_fd.store(g_watcher.fds[1], std::memory_order_relaxed);
  struct sigaction sa {};
  sa.sa_handler = sigquit_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGQUIT, &sa, &g_watcher.previous);
  g_watcher.active.store(true, std::memory_order_relaxed);
}

void stop_sigquit_watcher() noexcept {
  if (!g_watcher.active.load(std::memory_order_relaxed)) return;
  sigaction(SIGQUIT, &g_watcher.previous, nullptr);
  quit_fd.store(-1, std::memory_order_relaxed);
  const char s = 's';
  (void)!::write(g_watcher.fds[1], &s, 1);
  g_watcher.thread.join();  // if a dump is under way, it ends the process
  ::close(g_watcher.fds[0]);
  ::close(g_watcher.fds[1]);
  g_watcher.active.store(false, std::memory_order_relaxed);
}

std::size_t sigquit_watcher_threads() noexcept {
  return g_watcher.active.load(std::memory_order_relaxed) ? 1 : 0;
}

}  // namespace rt::detail

// ---- public entry points ---------------------------------------------------------------------

namespace rt {

void dump_fibers(std::ostream& out) {
  detail::worker* w = detail::current_worker();
  if (w) {
    out << detail::format_fiber_dump(w->rt, detail::current_fiber(), static_cast<std::size_t>(-1));
    return;
  }
  // A plain thread: hold the runtime so rt::run cannot tear it down meanwhile.
  detail::plain_thread_scope scope;
  detail::runtime* rt = detail::g_current_runtime.load();
  if (!rt) {
    out << "rt::dump_fibers: no runtime is running (call it while rt::run runs)\n";
    return;
  }
  out << detail::format_fiber_dump(*rt, nullptr, static_cast<std::size_t>(-1));
}

void this_fiber::set_name(std::string_view name) noexcept {
  detail::fiber* f = detail::current_fiber();
  if (!f) return;
  const std::size_t n = std::min(name.size(), detail::fiber::name_bytes - 1);
  // Byte-wise relaxed atomics: a concurrent dump may read a torn name, never a racy one.
  for (std::size_t i = 0; i < n; ++i) {
    std::atomic_ref<char>(f->name[i]).store(name[i], std::memory_order_relaxed);
  }
  std::atomic_ref<char>(f->name[n]).store('\0', std::memory_order_relaxed);
}

std::string this_fiber::name() {
  detail::fiber* f = detail::current_fiber();
  if (!f) return {};
  char buf[detail::fiber::name_bytes];
  detail::copy_name(f, buf);
  return buf;
}

}  // namespace rt
