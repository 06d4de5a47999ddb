# Safetensors I/O tests need tcq::io (nlohmann-json); this project's own build requires it.
if(NOT TARGET tcq_io)
  message(FATAL_ERROR "tests/test_safetensors.cpp needs nlohmann_json >= 3 "
                      "(Debian: nlohmann-json3-dev) for tcq::io; or set TCQ_BUILD_TESTS=OFF")
endif()
target_link_libraries(test_safetensors PRIVATE tcq::io)
# Tokenizer tests need tcq::tokenizer (PCRE2, utf8proc); this project's own build requires it.
if(NOT TARGET tcq_tokenizer)
  message(FATAL_ERROR "tests/test_tokenizer.cpp needs libpcre2-8 and libutf8proc for tcq::tokenizer "
                      "(Debian: libpcre2-dev libutf8proc-dev); or set TCQ_BUILD_TESTS=OFF")
endif()
target_link_libraries(test_tokenizer PRIVATE tcq::tokenizer)
target_link_libraries(test_calib_ids PRIVATE tcq::io)
