# Each public header must compile on its own (STYLE.md §2). For every header of a folder this
# generates a one-line source that includes only that header and compiles it into an object
# library with the folder's own dependencies, so a header that leans on an include it does not
# make itself fails the build.

option(TBPROXY_CHECK_HEADERS "Compile every header on its own" ON)

# tb_check_headers(FOLDER DEPS target...)
function(tb_check_headers folder)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  if(NOT TBPROXY_CHECK_HEADERS)
    return()
  endif()
  file(GLOB_RECURSE headers RELATIVE ${PROJECT_SOURCE_DIR} CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/${folder}/*.h)
  set(sources "")
  foreach(header IN LISTS headers)
    string(MAKE_C_IDENTIFIER ${header} stem)
    set(source ${CMAKE_BINARY_DIR}/header_check/${stem}.cc)
    set(text "#include \"${header}\"  // Must compile alone.\n")
    if(EXISTS ${source})
      file(READ ${source} previous)
    else()
      set(previous "")
    endif()
    if(NOT previous STREQUAL text)
      file(WRITE ${source} ${text})
    endif()
    list(APPEND sources ${source})
  endforeach()
  string(MAKE_C_IDENTIFIER ${folder} name)
  add_library(header_check_${name} OBJECT ${sources})
  target_include_directories(header_check_${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(header_check_${name} PRIVATE ${TB_WARNINGS})
  target_compile_definitions(header_check_${name} PRIVATE
    TB_SOURCE_DIR="${PROJECT_SOURCE_DIR}" TB_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared")
  target_link_libraries(header_check_${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest)
endfunction()
