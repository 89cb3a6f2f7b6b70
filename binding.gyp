{
  "targets": [
    {
      "target_name": "sockvisor",
      "sources": ["native/sockvisor.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
