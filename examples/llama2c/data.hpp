#pragma once
/// @file data.hpp
/// @brief The byte-text helpers of the llama engine (llama/text.hpp) under the l2c names.

#include "../llama/text.hpp"
#include "model.hpp"

namespace l2c {
using llama::window_tokens;
using llama::token_batch;
using llama::read_text;
using llama::byte_token;
using llama::encode;
using llama::decode_bytes;
using llama::fill_window;
using llama::eval_windows;
using llama::sample_windows;
using llama::sample_mix;
using llama::split_lines;
using llama::arith_problem;
using llama::arith_equals_pos;
using llama::arith_problems;
using llama::is_arith_text;
}  // namespace l2c
