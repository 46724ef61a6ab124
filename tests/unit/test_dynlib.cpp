// Libraries opened on first use (util/dynlib.hpp): a missing one is a clear error naming its package.
#include <gtest/gtest.h>

#include "util/dynlib.hpp"

TEST(DynLib, MissingLibraryNamesThePackage) {
    auto lib = rp::util::open_library("librelaypermit-missing.so.9", "librelaypermit-missing9");
    ASSERT_FALSE(lib);
    EXPECT_NE(lib.error().message.find("cannot load librelaypermit-missing.so.9 (install the package librelaypermit-missing9)"),
              std::string::npos)
        << lib.error().message;
}

TEST(DynLib, MissingSymbolNamesIt) {
    auto lib = rp::util::open_library("libc.so.6", "libc6");
    ASSERT_TRUE(lib) << lib.error().message;
    int (*fn)(int) = nullptr;
    auto st = rp::util::load_symbol(*lib, "libc.so.6", "relaypermit_no_such_function", fn);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "libc.so.6 has no function relaypermit_no_such_function (too old?)");
    ASSERT_TRUE(rp::util::load_symbol(*lib, "libc.so.6", "abs", fn));
    EXPECT_EQ(fn(-3), 3);
}
