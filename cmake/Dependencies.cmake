# Third-party libraries, all from Debian packages. The executable must work when copied alone,
# so the libraries that ship static archives are linked statically (SQLite, PCRE2), fmt's
# compiled part is built once into rp_util (src/util/fmt_impl.cpp) and toml++ is used header-only,
# and libstdc++/libgcc are linked statically; glibc stays dynamic.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
# fmt in its library mode (no FMT_HEADER_ONLY: that compiles fmt's implementation in every file
# that includes it), its out-of-line part supplied by src/util/fmt_impl.cpp, not by libfmt.so.
get_target_property(RP_FMT_INCLUDE fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
add_library(rp_fmt INTERFACE)
target_include_directories(rp_fmt SYSTEM INTERFACE ${RP_FMT_INCLUDE})
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

# tinycdb (libcdb-dev): CDB files for the postfix-cdb and tcprules-cdb exports. Static archive.
find_library(RP_CDB_STATIC NAMES libcdb.a cdb REQUIRED)
find_path(RP_CDB_INCLUDE cdb.h REQUIRED)
add_library(rp_cdb INTERFACE)
target_link_libraries(rp_cdb INTERFACE ${RP_CDB_STATIC})
target_include_directories(rp_cdb INTERFACE ${RP_CDB_INCLUDE})

# Berkeley DB 5.3 (libdb5.3-dev): Sendmail's access.db hash for the sendmail-access export.
find_library(RP_BDB_STATIC NAMES libdb-5.3.a libdb.a db-5.3 REQUIRED)
find_path(RP_BDB_INCLUDE db.h REQUIRED)
add_library(rp_bdb INTERFACE)
target_link_libraries(rp_bdb INTERFACE ${RP_BDB_STATIC} Threads::Threads)
target_include_directories(rp_bdb INTERFACE ${RP_BDB_INCLUDE})

# LMDB (liblmdb-dev): Postfix's lmdb: map for the postfix-lmdb export. Static archive.
find_library(RP_LMDB_STATIC NAMES liblmdb.a lmdb REQUIRED)
find_path(RP_LMDB_INCLUDE lmdb.h REQUIRED)
add_library(rp_lmdb INTERFACE)
target_link_libraries(rp_lmdb INTERFACE ${RP_LMDB_STATIC} Threads::Threads)
target_include_directories(rp_lmdb INTERFACE ${RP_LMDB_INCLUDE})

# libsystemd (sd-journal) for the journald source, and GnuTLS for the syslog source's tls:
# listeners (rsyslog's gtls driver is the usual client). Debian ships no static libsystemd, and
# GnuTLS's archive would drag in nettle, gmp, p11-kit, idn2, tasn1; linked dynamically, the two
# and their dependencies cost every start of every command ~8 ms (GnuTLS's constructor most).
# So the sources use only their headers (rp_libsystemd_headers, rp_gnutls_headers) and open
# libsystemd.so.0 / libgnutls.so.30 when a journald source or a tls: listener starts
# (src/util/dynlib.hpp). rp_libsystemd and rp_gnutls link them, for tests that use their clients.
# Packages: libsystemd-dev, libgnutls28-dev (at run time: libsystemd0, libgnutls30).
pkg_check_modules(RP_LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
add_library(rp_libsystemd INTERFACE)
target_link_libraries(rp_libsystemd INTERFACE PkgConfig::RP_LIBSYSTEMD)
add_library(rp_libsystemd_headers INTERFACE)
target_include_directories(rp_libsystemd_headers INTERFACE ${RP_LIBSYSTEMD_INCLUDE_DIRS})
pkg_check_modules(RP_GNUTLS REQUIRED IMPORTED_TARGET gnutls)
add_library(rp_gnutls INTERFACE)
target_link_libraries(rp_gnutls INTERFACE PkgConfig::RP_GNUTLS)
add_library(rp_gnutls_headers INTERFACE)
target_include_directories(rp_gnutls_headers INTERFACE ${RP_GNUTLS_INCLUDE_DIRS})

# Shared permit stores (store = redis://, postgresql://, mysql://). hiredis has a static archive
# and no dependencies; libpq and the MariaDB client pull in OpenSSL, Kerberos and LDAP, so the
# store code uses only their headers (rp_libpq_headers, rp_mariadb_headers) and opens
# libpq.so.5 / libmariadb.so.3 when a store needs them (src/store/dynlib.hpp). rp_libpq and
# rp_mariadb link them, for tests that use the engines' own clients.
# Packages: libhiredis-dev, libpq-dev, libmariadb-dev (at run time: libpq5, libmariadb3).
find_library(RP_HIREDIS_STATIC NAMES libhiredis.a hiredis REQUIRED)
find_path(RP_HIREDIS_INCLUDE hiredis/hiredis.h REQUIRED)
add_library(rp_hiredis INTERFACE)
target_link_libraries(rp_hiredis INTERFACE ${RP_HIREDIS_STATIC})
target_include_directories(rp_hiredis INTERFACE ${RP_HIREDIS_INCLUDE})
pkg_check_modules(RP_LIBPQ REQUIRED IMPORTED_TARGET libpq)
add_library(rp_libpq INTERFACE)
target_link_libraries(rp_libpq INTERFACE PkgConfig::RP_LIBPQ)
pkg_check_modules(RP_MARIADB REQUIRED IMPORTED_TARGET libmariadb)
add_library(rp_mariadb INTERFACE)
target_link_libraries(rp_mariadb INTERFACE PkgConfig::RP_MARIADB)
add_library(rp_libpq_headers INTERFACE)
target_include_directories(rp_libpq_headers INTERFACE ${RP_LIBPQ_INCLUDE_DIRS})
add_library(rp_mariadb_headers INTERFACE)
target_include_directories(rp_mariadb_headers INTERFACE ${RP_MARIADB_INCLUDE_DIRS})
