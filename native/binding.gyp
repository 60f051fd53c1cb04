{
  "targets": [
    {
      "target_name": "tessera_native",
      "sources": ["src/binding.c", "src/kernels.c", "src/elementwise.c", "src/mamba.c", "src/scan.c", "src/ffn.c", "src/parallel.c", "src/attention.c", "src/attention-f32.c", "src/memory.c", "src/train.c", "src/train-binding.c", "src/backward.c", "src/scan-backward.c", "src/quant.c", "src/quant-binding.c", "src/gemm-bf16.c", "src/gemm-f32.c", "src/gemm-binding.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=c11", "-O3", "-ffp-contract=fast", "-fno-math-errno", "-fopenmp-simd", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lopenblas", "-lm", "-lpthread"]
    }
  ]
}
