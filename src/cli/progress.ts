/** A one-line progress bar on stderr (only drawn on a terminal). */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): (done: number, total: number) => void {
  let last = -1;
  return (done, total) => {
    if (!stream.isTTY) return;
    const pct = Math.floor((100 * done) / Math.max(1, total));
    if (pct === last && done < total) return;
    last = pct;
    const width = 30,
      fill = Math.round((width * pct) / 100);
    stream.write(`\r${label} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${pct}%`);
    if (done >= total) stream.write('\n');
  };
}
