/** Anchors: onnxruntime-node (MatMulNBits int4 acc. level 4, f32 MatMul) and tfjs (wasm backend). */
import { GEMV_COPIES, GEMV_SHAPE, type Case } from './kernels.js';
import { matMulModel, matMulNBitsModel } from './kernels_onnx.js';

export async function ortCases(): Promise<Case[]> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (e) {
    console.error(`bench: onnxruntime-node unavailable (${(e as Error).message}); skipping its anchors`);
    return [];
  }
  const { outDim: N, inDim: K } = GEMV_SHAPE;
  const cases: Case[] = [];
  const q4 = matMulNBitsModel(1, K, N, GEMV_COPIES);
  const q4Bytes = GEMV_COPIES * N * (K / 32) * 20;
  const f32Copies = 8; // 8 × 64 MiB
  const f32 = matMulModel(1, K, N, f32Copies);
  const q4Gemm = matMulNBitsModel(128, K, N, 1);
  for (const threads of [1, 2]) {
    const opts = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' as const, graphOptimizationLevel: 'all' as const };
    const s4 = await ort.InferenceSession.create(q4, opts);
    const sf = await ort.InferenceSession.create(f32, opts);
    const sg = await ort.InferenceSession.create(q4Gemm, opts);
    const X1 = new ort.Tensor(
      'float32',
      new Float32Array(K).map((_, i) => Math.sin(i)),
      [1, K],
    );
    const X128 = new ort.Tensor(
      'float32',
      new Float32Array(128 * K).map((_, i) => Math.cos(i)),
      [128, K],
    );
    cases.push({
      name: `ORT MatMulNBits int4 GEMV ${N}x${K} (acc. level 4), ${threads}t`,
      unit: 'GB/s',
      units: q4Bytes / 1e9,
      key: `ort_int4_gemv_gbs_${threads}t`,
      fn: async () => {
        await s4.run({ X: X1 });
      },
    });
    cases.push({
      name: `ORT MatMul f32 GEMV ${N}x${K}, ${threads}t`,
      unit: 'GB/s',
      units: (f32Copies * N * K * 4) / 1e9,
      key: `ort_f32_gemv_gbs_${threads}t`,
      fn: async () => {
        await sf.run({ X: X1 });
      },
    });
    cases.push({
      name: `ORT MatMulNBits int4 GEMM T=128 ${N}x${K}, ${threads}t`,
      unit: 'GFLOP/s',
      units: (2 * 128 * N * K) / 1e9,
      key: `ort_int4_gemm_gflops_${threads}t`,
      fn: async () => {
        await sg.run({ X: X128 });
      },
    });
  }
  return cases;
}

/** tfjs-core with the wasm backend (XNNPACK; cpu backend if wasm cannot load): f32 GEMM T=128. */
export async function tfjsCases(): Promise<Case[]> {
  const tf = await import('@tensorflow/tfjs-core');
  let backend = 'wasm';
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error('setBackend failed');
  } catch (e) {
    console.error(`bench: tfjs wasm backend unavailable (${(e as Error).message}); using cpu`);
    await import('@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js').catch(() => undefined);
    backend = 'cpu';
    await tf.setBackend('cpu');
  }
  await tf.ready();
  const { outDim: N, inDim: K } = GEMV_SHAPE,
    T = 128;
  const x = tf.tensor2d(
    new Float32Array(T * K).map((_, i) => Math.cos(i)),
    [T, K],
  );
  // [K, N]: tfjs-wasm's fast layout (with transposeB it runs ~4x slower here)
  const w = tf.tensor2d(
    new Float32Array(N * K).map((_, i) => Math.sin(i) * 0.1),
    [K, N],
  );
  return [
    {
      name: `tfjs-${backend} f32 GEMM T=${T} ${N}x${K}`,
      unit: 'GFLOP/s',
      units: (2 * T * N * K) / 1e9,
      key: 'tfjs_gemm_gflops',
      fn: () => {
        const y = tf.matMul(x, w);
        y.dataSync();
        y.dispose();
      },
    },
  ];
}
