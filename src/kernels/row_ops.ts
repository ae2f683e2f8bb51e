/** The TypeScript RowOps (kernels.ts): what the model runs when a backend has none of its own. */
import { altupCorrectStreams, altupMix4, altupRouterDots } from './altup.js';
import type { RowOps } from './kernels.js';
import { rmsNorm } from './norm.js';
import { addRepeated, scaleColumns, sum3Scaled } from './residual.js';
import { ropeRows } from './rope.js';
import { gaussianGeluMul } from './sparse.js';

export const tsRowOps: RowOps = { rmsNorm, altupRouterDots, altupMix4, altupCorrectStreams, addRepeated, sum3Scaled, scaleColumns, gaussianGeluMul, rope: ropeRows };
