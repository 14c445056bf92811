{
  "targets": [
    {
      "target_name": "sfnative",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/fork.cc",
        "native/addon/pidwatch.cc",
        "native/addon/memory.cc",
        "native/addon/hugepages.cc",
        "native/addon/exit.cc",
        "native/addon/mpi.cc",
        "native/dataplane/job.c",
        "native/dataplane/p2p.c",
        "native/dataplane/coll.c",
        "native/dataplane/ops.c"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include"
      ],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"]
    }
  ]
}
