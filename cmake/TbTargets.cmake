# Helpers that give every target of ours the same warnings and test registration.

set(TB_WARNINGS -Wall -Wextra -Werror -Werror=unused-result -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # Checks ABSL_GUARDED_BY and friends; only clang understands the annotations.
  list(APPEND TB_WARNINGS -Wthread-safety)
endif()

# The Abseil vocabulary every layer speaks (Status and StatusOr across boundaries, strings, time,
# Mutex): one name in DEPS lists instead of the same five.
add_library(tb_absl_common INTERFACE)
target_link_libraries(tb_absl_common INTERFACE
  absl::status absl::statusor absl::strings absl::synchronization absl::time)

# tb_library(NAME SOURCES ... DEPS ...)
function(tb_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE ${TB_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# tb_header_library(NAME HEADERS ... DEPS ...): header-only code (an interface, test helpers) as
# a target of its own, so whoever includes these headers must link NAME and, through it, DEPS.
# HEADERS is read by tests/check_layers.py, which maps every header to exactly one target.
function(tb_header_library name)
  cmake_parse_arguments(ARG "" "" "HEADERS;DEPS" ${ARGN})
  add_library(${name} INTERFACE)
  target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} INTERFACE ${ARG_DEPS})
endfunction()

# tb_executable(NAME SOURCES ... DEPS ...)
function(tb_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE ${TB_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# tb_use_fast_malloc(TARGET): links gperftools' tcmalloc (thread-caching malloc) into a service
# binary. gRPC allocates a few objects per call on many threads; glibc malloc cost ~15 % of
# tbproxy's CPU on the benchmark hot path (bench/PROFILE.md). Skipped under sanitizers and
# fuzzing (they bring their own allocator) and when the library is missing (glibc malloc then).
find_library(TB_TCMALLOC_LIBRARY NAMES tcmalloc_minimal)
function(tb_use_fast_malloc name)
  if(TBPROXY_SANITIZE OR TBPROXY_FUZZ OR NOT TB_TCMALLOC_LIBRARY)
    return()
  endif()
  target_link_libraries(${name} PRIVATE ${TB_TCMALLOC_LIBRARY})
endfunction()

# tb_test(NAME SOURCES ... DEPS ... [LABELS ...]): a GoogleTest binary registered with ctest.
# Tests are discovered when ctest runs, so building does not execute every test binary.
function(tb_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  tb_executable(${name} SOURCES ${ARG_SOURCES} DEPS ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    TB_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    TB_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "unit;${ARG_LABELS}")
endfunction()

# tb_fuzzer(NAME SOURCES ... DEPS ...): a libFuzzer target, built only with TBPROXY_FUZZ=ON.
set(TBPROXY_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz_* ctest runs its fuzzer")
math(EXPR TBPROXY_FUZZ_TEST_TIMEOUT "${TBPROXY_FUZZ_SECONDS} * 3 + 60")
function(tb_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  if(NOT TBPROXY_FUZZ)
    return()
  endif()
  tb_executable(${name} SOURCES ${ARG_SOURCES} DEPS ${ARG_DEPS})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  # ctest runs each fuzzer for TBPROXY_FUZZ_SECONDS from its seed corpus (fuzz/corpus/<name>
  # beside the source, when present); new inputs go to a directory in the build tree, so the
  # committed corpus only changes by hand.
  set(work_corpus ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
  file(MAKE_DIRECTORY ${work_corpus})
  set(seed_corpus "")
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${name})
    set(seed_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${name})
  endif()
  add_test(NAME fuzz_${name}
           COMMAND ${name} -max_total_time=${TBPROXY_FUZZ_SECONDS} -print_final_stats=1
                   ${work_corpus} ${seed_corpus})
  set_tests_properties(fuzz_${name} PROPERTIES LABELS "fuzz"
                       TIMEOUT ${TBPROXY_FUZZ_TEST_TIMEOUT})
endfunction()
