// Whether this test binary (and so the millrace binary beside it, from the
// same build) runs under AddressSanitizer, several times slower: tests that
// time whole pipeline runs use a smaller workload then.
#pragma once

namespace millrace::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

}  // namespace millrace::testing
