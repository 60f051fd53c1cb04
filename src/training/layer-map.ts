/** Which teacher layer each student layer learns from: `[studentLayer, teacherLayer]` pairs (0-based). */
export type LayerMap = [student: number, teacher: number][];

/**
 * The uniform map of DistilBERT/TinyBERT: with k = Lt / Ls, student layer i learns from teacher
 * layer k·(i + 1) − 1, so the last student layer always matches the last teacher layer
 * (1 student layer from 12: layer 0 ← layer 11; 4 from 12: 0←2, 1←5, 2←8, 3←11). When Lt is not
 * a multiple of Ls the teacher index is rounded.
 */
export function uniformLayerMap(studentLayers: number, teacherLayers: number): LayerMap {
  for (const [name, n] of [['studentLayers', studentLayers], ['teacherLayers', teacherLayers]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`uniformLayerMap: ${name} must be a positive integer, got ${n}`);
  }
  return Array.from({ length: studentLayers }, (_, i) => [
    i,
    Math.max(0, Math.round(((i + 1) * teacherLayers) / studentLayers) - 1),
  ]);
}
