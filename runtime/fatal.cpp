// runtime/fatal.cpp — fatal errors, panics and the stack-overflow handler.
#include "fatal.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <typeinfo>
#include <vector>

#include "fiber.hpp"

namespace rt::detail {
namespace {

// Flushes what the program wrote to stdout/stderr through stdio (std::cout writes through stdio
// while sync_with_stdio is on, the default). Never blocks: a stream locked by a thread that
// crashed mid-write is skipped rather than deadlocked on.
void flush_program_output() noexcept {
  for (FILE* f : {stdout, stderr}) {
    if (ftrylockfile(f) == 0) {
      fflush_unlocked(f);
      funlockfile(f);
    }
  }
}

// One fatal report at a time: a second fiber dying meanwhile waits for the first to exit.
std::mutex& report_mutex() {
  static std::mutex m;
  return m;
}

std::string loc_or(const std::string& s, const char* alt) {
  return s.empty() ? alt : s;
}

void write_all(int fd, const char* s, std::size_t n) noexcept {
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Formats an unsigned number into buf (async-signal-safe); returns the length.
std::size_t format_unsigned(std::uint64_t v, char* buf) noexcept {
  char tmp[24];
  std::size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  for (std::size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return n;
}

void overflow_handler(int sig, siginfo_t* info, void* uctx);
struct sigaction previous_segv;
struct sigaction previous_bus;

void chain_to_previous(int sig, siginfo_t* info, void* uctx) {
  const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) {
      prev.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: restore it and return, so the faulting instruction faults again and the
  // process dies of the signal as it would have without us.
  signal(sig, SIG_DFL);
}

void overflow_handler(int sig, siginfo_t* info, void* uctx) {
  overflow_context c{};
  const char* addr = static_cast<const char*>(info->si_addr);
  // A fault anywhere in the guard region below the running fiber's stack (options::guard_size,
  // 64 KiB by default) — or up to 64 KiB further, where nothing of ours is mapped (below a
  // slab's lowest stack) — is an overflow.
  if (current_fiber_stack(c) && addr < c.stack_bottom &&
      addr >= c.stack_bottom - c.guard_size - std::ptrdiff_t{64} * 1024) {
    flush_program_output();
    char msg[160];
    std::size_t n = 0;
    auto put = [&](const char* s) {  // async-signal-safe; msg is written by length, not as a string
      for (; *s != '\0'; ++s) msg[n++] = *s;
    };
    put("fatal error: fiber ");
    n += format_unsigned(c.fiber_id, msg + n);
    put(": stack overflow (stack size ");
    n += format_unsigned(c.stack_size / 1024, msg + n);
    put(" KiB)\n");
    write_all(2, msg, n);
    _exit(2);
  }
  chain_to_previous(sig, info, uctx);
}

}  // namespace

void fatal_error(const char* fmt, ...) noexcept {
  flush_program_output();
  std::lock_guard lk(report_mutex());
  std::fputs("fatal error: ", stderr);
  va_list ap;
  va_start(ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): a false positive, ap is started above.
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  _exit(2);
}

namespace {

// Where a spawn-site return address lies: which object file, and the address to give addr2line.
struct code_location {
  std::string object;   // path of the executable or shared library
  std::uintptr_t addr;  // object-relative for position-independent objects, else absolute
  std::string symbol;   // nearest dynamic symbol (dladdr), demangled, may be empty
};

code_location locate(void* pc) {
  code_location loc{"", reinterpret_cast<std::uintptr_t>(pc), ""};
  Dl_info info{};
  if (!dladdr(pc, &info)) return loc;
  loc.object = info.dli_fname ? info.dli_fname : "";
  if (loc.object.empty() || loc.object.find('/') == std::string::npos)
    loc.object = "/proc/self/exe";
  // The call instruction is just before the return address.
  const auto* ehdr = static_cast<const ElfW(Ehdr)*>(info.dli_fbase);
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(pc) - 1;
  if (ehdr && ehdr->e_type == ET_DYN) a -= reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  loc.addr = a;
  if (info.dli_sname) {
    int status = 0;
    char* d = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    loc.symbol = status == 0 && d ? d : info.dli_sname;
    std::free(d);
  }
  return loc;
}

// Resolves return addresses to "created by function\n\tfile:line" (Go's wording) with addr2line
// (binutils), taking the outermost of any inlined frames — the user's code that called rt::go.
// Falls back to the dynamic symbol or the raw address when addr2line or debug information is
// missing.
std::vector<std::string> symbolize(const std::vector<void*>& pcs) {
  std::vector<std::string> out(pcs.size());
  std::vector<code_location> locs;
  locs.reserve(pcs.size());
  for (void* pc : pcs) locs.push_back(locate(pc));
  for (std::size_t i = 0; i < pcs.size(); ++i) {
    if (!pcs[i]) {
      out[i] = "created by rt::run";
      continue;
    }
    char fallback[256];
    std::snprintf(fallback, sizeof fallback, "created by %s\n\t%s+0x%zx",
                  loc_or(locs[i].symbol, "?").c_str(), locs[i].object.c_str(),
                  static_cast<std::size_t>(locs[i].addr));
    out[i] = fallback;
  }
  // One addr2line run per object file, all its addresses at once.
  for (std::size_t i = 0; i < pcs.size(); ++i) {
    if (!pcs[i] || locs[i].object.empty()) continue;
    bool first = true;
    for (std::size_t j = 0; j < i; ++j) first &= !(pcs[j] && locs[j].object == locs[i].object);
    if (!first) continue;
    std::string cmd = "addr2line -C -f -i -a -e '" + locs[i].object + "'";
    std::vector<std::size_t> idx;
    for (std::size_t j = i; j < pcs.size(); ++j) {
      if (pcs[j] && locs[j].object == locs[i].object) {
        char a[32];
        std::snprintf(a, sizeof a, " 0x%zx", static_cast<std::size_t>(locs[j].addr));
        cmd += a;
        idx.push_back(j);
      }
    }
    cmd += " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) continue;
    std::vector<std::vector<std::string>> blocks;
    char line[4096];
    while (std::fgets(line, sizeof line, p)) {
      std::string l(line);
      while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
      if (l.rfind("0x", 0) == 0) {
        blocks.emplace_back();
      } else if (!blocks.empty()) {
        blocks.back().push_back(l);
      }
    }
    pclose(p);
    for (std::size_t k = 0; k < blocks.size() && k < idx.size(); ++k) {
      // (function, file:line) pairs, innermost inlined frame first: report the first frame
      // outside librt-csp's own headers (rt::go and its helpers are inlined into the caller).
      const auto& b = blocks[k];
      for (std::size_t f = 0; f + 1 < b.size(); f += 2) {
        const std::string& file = b[f + 1];
        if (file.rfind("??", 0) == 0) break;  // no debug information
        if (file.find("/include/rt/") != std::string::npos && f + 3 < b.size()) continue;
        out[idx[k]] = "created by " + b[f] + "\n\t" + file;
        break;
      }
    }
  }
  return out;
}

}  // namespace

std::string describe_spawn_site(void* spawn_pc) {
  std::string s = symbolize({spawn_pc})[0];  // "created by FUNCTION\n\tFILE:LINE"
  if (s.rfind("created by ", 0) == 0) s.erase(0, 11);
  if (const auto tab = s.find("\n\t"); tab != std::string::npos)
    s = s.substr(tab + 2) + " in " + s.substr(0, tab);
  return s;
}

void fatal_deadlock(const std::vector<fiber_report>& fibers) noexcept {
  flush_program_output();
  std::lock_guard lk(report_mutex());
  std::fputs("fatal error: all goroutines are asleep - deadlock!\n", stderr);
  // Go prints every goroutine; a million identical lines help nobody, so past a limit we count.
  constexpr std::size_t limit = 1000;
  const std::size_t shown = std::min(limit, fibers.size());
  std::vector<void*> pcs;
  for (std::size_t i = 0; i < shown; ++i) pcs.push_back(fibers[i].spawn_pc);
  std::vector<std::string> sites = symbolize(pcs);
  for (std::size_t i = 0; i < shown; ++i) {
    std::fprintf(stderr, "\nfiber %llu [%s]:\n%s\n", static_cast<unsigned long long>(fibers[i].id),
                 fibers[i].reason, sites[i].c_str());
  }
  if (fibers.size() > shown) {
    std::fprintf(stderr, "\n... and %zu more parked fibers\n", fibers.size() - shown);
  }
  std::fflush(stderr);
  _exit(2);
}

void panic_from(std::exception_ptr e, const fiber* f) noexcept {
  flush_program_output();
  std::lock_guard lk(report_mutex());
  std::string what;
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    int status = 0;
    char* name = t ? abi::__cxa_demangle(t->name(), nullptr, nullptr, &status) : nullptr;
    what = std::string("exception of type ") + (name ? name : (t ? t->name() : "unknown"));
    std::free(name);
  }
  std::string site = symbolize({f ? f->spawn_pc : nullptr})[0];
  std::fprintf(stderr, "panic: %s\n\nfiber %llu [running]:\n%s\n", what.c_str(),
               static_cast<unsigned long long>(f ? f->id : 0), site.c_str());
  std::fflush(stderr);
  _exit(2);
}

void install_overflow_handler() noexcept {
  if (built_with_sanitizer) return;  // ASan/TSan own SIGSEGV and report overflows themselves
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
  });
}

void* install_signal_stack() noexcept {
  const std::size_t size = std::size_t{64} * 1024;
  void* mem = std::malloc(size);
  if (!mem) return nullptr;
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = size;
  sigaltstack(&ss, nullptr);
  return mem;
}

void free_signal_stack(void* p) noexcept {
  if (!p) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  std::free(p);
}

}  // namespace rt::detail
