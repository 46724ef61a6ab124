// Libraries opened on first use (util/dynlib.hpp): a missing one is a clear error naming its package.
#include <gtest/gtest.h>

#include <cstdlib>

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

namespace {
struct LabsApi {
    RP_DYNLIB_DECLARE(labs)
};
int fills = 0;
rp::core::Status fill_labs(void* lib, const std::string& soname, LabsApi& out) {
    ++fills;
    RP_DYNLIB_LOAD(labs)
    return rp::core::ok();
}
}  // namespace

// A failure is not kept (a library installed later is found then); a success is, and the table
// is not filled again.
TEST(DynLib, LoadApiOnceRetriesAFailureAndKeepsASuccess) {
    LabsApi api;
    auto missing = rp::util::load_api_once<LabsApi>("librelaypermit-missing.so.9", "librelaypermit-missing9", api, fill_labs);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("install the package librelaypermit-missing9"), std::string::npos);
    EXPECT_EQ(fills, 0);
    EXPECT_EQ(api.labs, nullptr);
    ASSERT_TRUE(rp::util::load_api_once<LabsApi>("libc.so.6", "libc6", api, fill_labs));
    EXPECT_EQ(fills, 1);
    ASSERT_NE(api.labs, nullptr);
    EXPECT_EQ(api.labs(-4), 4);
    EXPECT_TRUE(rp::util::load_api_once<LabsApi>("librelaypermit-missing.so.9", "x", api, fill_labs)) << "kept";
    EXPECT_EQ(fills, 1);
}
