#pragma once
// Sanitizer builds run the same code paths on less data (they are ~30x slower).
#if defined(__SANITIZE_ADDRESS__)
#define TCQ_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define TCQ_TEST_SANITIZED 1
#endif
#endif
#ifdef TCQ_TEST_SANITIZED
constexpr bool sanitized_build = true;
#else
constexpr bool sanitized_build = false;
#endif
