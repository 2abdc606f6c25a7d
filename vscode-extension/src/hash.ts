/** Hashing for `mesh/documentHash`, apart from `vscode` so tests cover it. */
import { createHash } from 'node:crypto';

/** SHA-256 of a text encoded as UTF-8, lower-case hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
