// runtime/context_switch.hpp — the jump that resumes a suspended fiber or scheduler context.
#pragma once

#include <boost/context/detail/fcontext.hpp>

namespace rt::detail {

// Suspends the calling context and resumes `to`, a context that suspended itself in a jump of
// its own (resume_context, or Boost.Context's jump_fcontext/ontop_fcontext): not a fresh one
// from make_fcontext, which Boost's jump_fcontext starts. Returns, once something resumes the
// caller, what that jump delivered: the context that switched away and its `data`.
//
// Same saved-context layout as Boost 1.74's x86-64 System V fcontext (runtime/dump.cpp reads
// it), so contexts move freely between these jumps and Boost's. Differences, and why:
//  - it ends in a `ret` into the resumed side, not an indirect jump. jump_fcontext's indirect
//    jump leaves the processor's return-address stack one entry deep with the switching side's
//    call, so every return the resumed side then makes is mispredicted (pingpong: ~25 % slower
//    in wall time with fewer instructions); with the `ret`, the resumed side's returns are
//    predicted from the switching side's calls, which on a switch between two fibers blocked in
//    the same code are the same addresses;
//  - it is called directly, not through the PLT of libboost_context.so, and does not go
//    through a function run "on top" of the resumed context (ontop_fcontext with a function
//    returning its argument did the `ret` before: 27 instructions, now 20).
// The MXCSR and the x87 control word are saved and restored as Boost does: a fiber keeps its own
// floating-point control modes wherever it runs.
#if defined(__x86_64__) && defined(__ELF__)
extern "C" [[gnu::visibility("hidden")]] boost::context::detail::transfer_t rt_resume_context(
    boost::context::detail::fcontext_t to, void* data) noexcept;
inline boost::context::detail::transfer_t resume_context(boost::context::detail::fcontext_t to,
                                                         void* data) noexcept {
  return rt_resume_context(to, data);
}
#else
// Elsewhere: Boost's ontop_fcontext with a function that returns what it is given.
inline boost::context::detail::transfer_t pass_through(
    boost::context::detail::transfer_t t) noexcept {
  return t;
}
inline boost::context::detail::transfer_t resume_context(boost::context::detail::fcontext_t to,
                                                         void* data) noexcept {
  return boost::context::detail::ontop_fcontext(to, data, pass_through);
}
#endif

}  // namespace rt::detail
