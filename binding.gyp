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
        "native/addon/mpi/binding.cc",
        "native/addon/mpi/errors.cc",
        "native/addon/mpi/p2p.cc",
        "native/addon/mpi/requests.cc",
        "native/addon/mpi/coll.cc",
        "native/addon/mpi/progress.cc",
        "native/addon/mpi/sched.cc",
        "native/addon/mpi/win.cc",
        "native/onesided/win.c",
        "native/onesided/rma.c",
        "native/onesided/sync.c",
        "native/dataplane/job.c",
        "native/dataplane/core.c",
        "native/dataplane/wait.c",
        "native/dataplane/errors.c",
        "native/dataplane/link_shm.c",
        "native/dataplane/link_tcp.c",
        "native/control/control.c",
        "native/control/join.c",
        "native/control/decode.c",
        "native/control/outcome.c",
        "native/addon/control.cc",
        "native/proc/status.c",
        "native/proc/watch.c",
        "native/proc/fork.c",
        "native/proc/admission.c",
        "native/dataplane/coll.c",
        "native/dataplane/ops.c",
        "native/addon/lazy.cc", "native/lazy/memsrv.c", "native/lazy/region.c", "native/lazy/zeromap.c",
        "native/lazy/multicast.c"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include",
        "native/onesided"
      ],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      # Symbols bound at load: lazily bound, every clone would resolve (and copy the GOT page of)
      # each libc call that only clones make (prctl, the gate's futex...) on its own.
      "ldflags": ["-Wl,-z,now"]
    },
    {
      "target_name": "sfmcast",
      "sources": ["native/addon/mcast.cc", "native/lazy/multicast.c"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"]
    }
  ]
}
