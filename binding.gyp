# Builds the nw_mptcp addon: the shared glue plus one backend per OS.
#
# With -Dnw_mptcp_emulated=1 (npm run build:emulated, Linux and clang only)
# it also builds nw_mptcp_emulated: the macOS backend compiled against the
# test-only Network framework emulation in test/emulation/, so that the
# test suite can run the macOS code path on Linux.
#
# With -Dnw_mptcp_sanitize=1 (test/sanitizers/asan.sh, Linux and clang only)
# both addons are built with AddressSanitizer and UndefinedBehaviorSanitizer
# for the test suite; the default build is unchanged.
{
  "variables": {
    "nw_mptcp_emulated%": 0,
    "nw_mptcp_sanitize%": 0,
    "sanitize_flags": [
      "-fsanitize=address,undefined",
      "-fno-sanitize-recover=undefined",
      "-fno-omit-frame-pointer",
      "-g",
      "-O1"
    ]
  },
  "targets": [
    {
      "target_name": "nw_mptcp",
      "sources": ["native/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/backend_linux.c",
            "native/diag_linux.c",
            "native/paths_linux.c",
            "native/socket_linux.c"
          ],
          "libraries": ["-lpthread"]
        }],
        ["nw_mptcp_sanitize==1", {
          "configurations": {
            "Release": {"cflags!": ["-O3"], "cflags": ["<@(sanitize_flags)"]}
          },
          "ldflags": ["-fsanitize=address,undefined"]
        }],
        ["OS=='mac'", {
          "sources": ["native/backend_darwin.c", "native/server_none.c"],
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "10.15",
            "OTHER_CFLAGS": ["-fblocks", "-Wall", "-Wextra"]
          },
          "link_settings": {
            "libraries": ["-framework Network", "-framework Security"]
          }
        }]
      ]
    },
    {
      "target_name": "nw_mptcp_emulated",
      "type": "none",
      "conditions": [
        ["OS=='linux' and nw_mptcp_emulated==1", {
          "type": "loadable_module",
          "product_extension": "node",
          "sources": [
            "native/addon.cc",
            "native/backend_darwin.c",
            "native/socket_linux.c",
            "<!@(ls test/emulation/*.c)"
          ],
          "include_dirs": [
            "test/emulation/include",
            "<!(node -p \"require('node-addon-api').include_dir\")"
          ],
          "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS"],
          "cflags": ["-Wall", "-Wextra", "-fblocks", "-fvisibility=hidden"],
          "cflags_c": ["-std=gnu11"],
          "cflags_cc": ["-std=c++17", "-fexceptions"],
          "cflags_cc!": ["-fno-exceptions"],
          "libraries": ["-lBlocksRuntime", "-lpthread"]
        }],
        ["OS=='linux' and nw_mptcp_emulated==1 and nw_mptcp_sanitize==1", {
          "configurations": {
            "Release": {"cflags!": ["-O3"], "cflags": ["<@(sanitize_flags)"]}
          },
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
