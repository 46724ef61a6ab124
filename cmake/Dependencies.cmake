# Third-party libraries, all from Debian packages. The executable must work when copied alone,
# so the libraries that ship static archives are linked statically (SQLite, PCRE2), fmt is used
# header-only (as is toml++), and libstdc++/libgcc are linked statically; glibc stays dynamic.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
# toml++ header-only: Debian's CMake package links the shared library, which would pull in
# libstdc++.so as well.
find_path(RP_TOMLPP_INCLUDE toml++/toml.h REQUIRED)
add_library(rp_toml INTERFACE)
target_include_directories(rp_toml INTERFACE ${RP_TOMLPP_INCLUDE})
target_compile_definitions(rp_toml INTERFACE TOML_HEADER_ONLY=1 TOML_EXCEPTIONS=1)

find_library(RP_SQLITE3_STATIC NAMES libsqlite3.a sqlite3 REQUIRED)
find_path(RP_SQLITE3_INCLUDE sqlite3.h REQUIRED)
add_library(rp_sqlite3 INTERFACE)
target_link_libraries(rp_sqlite3 INTERFACE ${RP_SQLITE3_STATIC} Threads::Threads ${CMAKE_DL_LIBS} m)
target_include_directories(rp_sqlite3 INTERFACE ${RP_SQLITE3_INCLUDE})

find_library(RP_PCRE2_STATIC NAMES libpcre2-8.a pcre2-8 REQUIRED)
find_path(RP_PCRE2_INCLUDE pcre2.h REQUIRED)
add_library(rp_pcre2 INTERFACE)
target_link_libraries(rp_pcre2 INTERFACE ${RP_PCRE2_STATIC})
target_include_directories(rp_pcre2 INTERFACE ${RP_PCRE2_INCLUDE})
target_compile_definitions(rp_pcre2 INTERFACE PCRE2_CODE_UNIT_WIDTH=8 PCRE2_STATIC)

find_path(RP_NLOHMANN_INCLUDE nlohmann/json.hpp REQUIRED)
add_library(rp_json INTERFACE)
target_include_directories(rp_json INTERFACE ${RP_NLOHMANN_INCLUDE})

# Hyperscan: the matcher's multi-literal prefilter (one pass over the buffer for all literals
# of all pattern sets). Static archive, C++ inside (libstdc++ is linked statically anyway).
find_library(RP_HS_STATIC NAMES libhs.a REQUIRED)
find_path(RP_HS_INCLUDE hs.h PATH_SUFFIXES hs REQUIRED)
add_library(rp_hyperscan INTERFACE)
target_link_libraries(rp_hyperscan INTERFACE ${RP_HS_STATIC} m)
target_include_directories(rp_hyperscan INTERFACE ${RP_HS_INCLUDE})
