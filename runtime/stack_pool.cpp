// runtime/stack_pool.cpp — see stack_pool.hpp for what the pool guarantees.
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fatal.hpp"
#include "valgrind.hpp"

namespace rt::detail {
namespace {

// Linux 6.13+: installs a guard region without splitting the mapping (value from the kernel's
// uapi mman-common.h; older headers lack it).
constexpr int madv_guard_install = 102;
// process_madvise() on the calling process itself (Linux 6.13+).
constexpr int pidfd_self = -10000;
// Bytes each slab maps, about; slabs keep the mapping count low.
constexpr std::size_t slab_bytes = 16u << 20;
// Stacks moved between a worker's cache and the shared pool at once.
constexpr std::size_t batch = 32;
// iovecs per process_madvise call (the kernel's UIO_MAXIOV).
constexpr std::size_t max_iov = 1024;

std::size_t page_size() {
  static const std::size_t ps = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return ps;
}

std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}

// Applies `advice` to each range, batching through process_madvise where the kernel has it.
// Returns false if the kernel refused the advice itself.
bool advise_ranges(std::vector<iovec>& ranges, int advice, bool& batched_ok) {
  std::size_t i = 0;
  while (batched_ok && i < ranges.size()) {
    std::size_t n = std::min(max_iov, ranges.size() - i);
    long r = syscall(SYS_process_madvise, pidfd_self, &ranges[i], n, advice, 0);
    if (r < 0) {
      batched_ok = false;  // old kernel, or advice not allowed through process_madvise
      break;
    }
    // A short count means the kernel stopped part-way: finish the rest one by one below.
    std::size_t bytes = static_cast<std::size_t>(r);
    while (n > 0 && bytes >= ranges[i].iov_len) {
      bytes -= ranges[i].iov_len;
      ++i;
      --n;
    }
    if (n > 0) break;
  }
  for (; i < ranges.size(); ++i) {
    if (madvise(ranges[i].iov_base, ranges[i].iov_len, advice) != 0) return false;
  }
  return true;
}

}  // namespace

stack_pool::stack_pool(const options& opts)
    : usable_(round_up(opts.stack_size, page_size())),
      guard_(round_up(opts.guard_size, page_size())),
      slot_(usable_ + guard_),
      slab_slots_(std::max<std::size_t>(16, slab_bytes / slot_)),
      high_water_(std::max<std::size_t>(batch * 2, opts.stack_pool_high_water)),
      policy_(opts.guard),
      mprotect_left_(opts.mprotect_budget),
      warm_cap_(8 * high_water_) {}

stack_pool::~stack_pool() {
  for (unsigned id : valgrind_ids_) valgrind_stack_deregister(id);
  for (auto& [p, n] : slabs_) munmap(p, n);
}

const char* stack_pool::guard_kind() const noexcept {
  switch (policy_) {
    case guard_policy::automatic:
      return "guard pages (MADV_GUARD_INSTALL)";
    case guard_policy::mprotect:
      return "guard pages (mprotect), then canaries";
    case guard_policy::canary:
      return "canaries";
  }
  return "?";
}

std::size_t stack_pool::guard_slab(char* slab, std::size_t nslots) {
  if (policy_ == guard_policy::automatic) {
    std::vector<iovec> guards(nslots);
    for (std::size_t i = 0; i < nslots; ++i) guards[i] = {slab + i * slot_, guard_};
    if (advise_ranges(guards, madv_guard_install, process_madvise_ok_)) return nslots;
    // The kernel predates MADV_GUARD_INSTALL: fall back for this slab and all later ones. Guards
    // it did install on this slab are harmless.
    policy_ = guard_policy::mprotect;
  }
  if (policy_ == guard_policy::mprotect) {
    std::size_t n = std::min(nslots, mprotect_left_);
    for (std::size_t i = 0; i < n; ++i) {
      if (mprotect(slab + i * slot_, guard_, PROT_NONE) != 0) {
        n = i;  // out of mappings: the rest get canaries
        mprotect_left_ = 0;
        break;
      }
    }
    mprotect_left_ -= std::min(mprotect_left_, n);
    return n;
  }
  return 0;
}

void stack_pool::map_slab() {
  const std::size_t bytes = slab_slots_ * slot_;
  // MAP_NORESERVE: stacks are mostly untouched, so do not charge their full size to overcommit.
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    fatal_error("out of memory: cannot map %zu bytes for fiber stacks (errno %d)", bytes, errno);
  }
  slabs_.emplace_back(static_cast<char*>(p), bytes);
  carve_slab_ = static_cast<char*>(p);
  carve_index_ = 0;
  carve_guarded_ = guard_slab(carve_slab_, slab_slots_);
}

void stack_pool::take_batch(std::vector<stack_slot>& out, std::size_t n) {
  std::lock_guard lk(mu_);
  while (n > 0 && !warm_.empty()) {
    out.push_back(warm_.back());
    warm_.pop_back();
    --n;
  }
  while (n > 0 && !cold_.empty()) {
    out.push_back(cold_.back());
    cold_.pop_back();
    --n;
  }
  while (n > 0) {
    if (carve_slab_ == nullptr || carve_index_ == slab_slots_) map_slab();
    stack_slot s{reinterpret_cast<std::uintptr_t>(carve_slab_ + carve_index_ * slot_)};
    if (carve_index_ >= carve_guarded_) {
      s.bits |= 1;
      *reinterpret_cast<std::uint64_t*>(bottom(s)) = canary_value;
    }
    ++carve_index_;
    if (running_on_valgrind()) valgrind_ids_.push_back(valgrind_stack_register(bottom(s), top(s)));
    out.push_back(s);
    --n;
  }
}

void stack_pool::release(const stack_slot* stacks, std::size_t n) {
  std::vector<iovec> ranges;
  ranges.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    // A canary stack keeps its lowest page (the canary lives there).
    std::size_t keep = stacks[i].has_canary() ? page_size() : 0;
    ranges.push_back({bottom(stacks[i]) + keep, usable_ - keep});
  }
  bool batched;
  {
    std::lock_guard lk(mu_);
    batched = process_madvise_ok_;
  }
  // MADV_DONTNEED keeps guard regions installed by MADV_GUARD_INSTALL.
  advise_ranges(ranges, MADV_DONTNEED, batched);
  std::lock_guard lk(mu_);
  if (!batched) process_madvise_ok_ = false;
  cold_.insert(cold_.end(), stacks, stacks + n);
}

void stack_cache::refill(stack_pool& pool) {
  pool.take_batch(stacks_, batch);
}

void stack_pool::share_warm(const stack_slot* stacks, std::size_t n) {
  std::size_t fit;
  {
    std::lock_guard lk(mu_);
    fit = std::min(n, warm_cap_ - std::min(warm_cap_, warm_.size()));
    warm_.insert(warm_.end(), stacks + (n - fit), stacks + n);  // the warmer end of the range
  }
  if (fit < n) release(stacks, n - fit);
}

void stack_pool::trim_shared() {
  std::vector<stack_slot> all;
  {
    std::lock_guard lk(mu_);
    all.swap(warm_);
  }
  if (!all.empty()) release(all.data(), all.size());
}

void stack_cache::share_excess(stack_pool& pool) {
  // Too many for one worker (fibers started elsewhere end here): hand the coldest down to the
  // high-water mark over to the shared warm list, for workers that run short.
  const std::size_t n = stacks_.size() - pool.high_water_;
  pool.share_warm(stacks_.data(), n);
  stacks_.erase(stacks_.begin(), stacks_.begin() + static_cast<std::ptrdiff_t>(n));
}

void stack_cache::trim(stack_pool& pool) {
  if (stacks_.size() <= pool.high_water_) return;
  // Release the coldest (the bottom of the LIFO): the warm top stays for reuse.
  const std::size_t n = stacks_.size() - pool.high_water_;
  pool.release(stacks_.data(), n);
  stacks_.erase(stacks_.begin(), stacks_.begin() + static_cast<std::ptrdiff_t>(n));
}

stack_pool::shared_counts stack_pool::counts() {
  std::lock_guard lk(mu_);
  shared_counts c;
  c.warm = warm_.size();
  c.cold = cold_.size();
  for (auto& slab : slabs_) c.mapped_bytes += slab.second;
  return c;
}

}  // namespace rt::detail
