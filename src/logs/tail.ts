/** The end of a log file, read from the end: a `tail` of a large log reads only what it shows. */
import fs from 'node:fs/promises';

const CHUNK = 64 * 1024;

export async function readLastLines(file: string, lines: number): Promise<string> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
  try {
    const size = (await handle.stat()).size;
    const chunks: Buffer[] = [];
    let newlines = 0;
    let position = size;
    // One more newline than lines wanted: the file's last byte is usually a newline itself.
    while (position > 0 && newlines <= lines) {
      const length = Math.min(CHUNK, position);
      position -= length;
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, position);
      chunks.unshift(buffer);
      for (const byte of buffer) if (byte === 10) newlines++;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const all = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
    const kept = all.slice(Math.max(0, all.length - lines));
    return kept.length === 0 || (kept.length === 1 && kept[0] === '') ? '' : kept.join('\n') + '\n';
  } finally {
    await handle.close();
  }
}
