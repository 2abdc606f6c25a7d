/**
 * What the host's pickers offer and how they read, without `vscode`, so unit tests load it in
 * plain Node.js.
 */
import type { Link, Role } from './protocol';

/** The role changes a host can make to someone with `role`. */
export function roleChoices(role: string): Role[] {
  return (['writer', 'reader', 'host'] as Role[]).filter((r) => r !== role);
}

/** The label of a role change. */
export function roleLabel(role: Role): string {
  return role === 'host' ? 'Make Host (you become a writer)' : role === 'writer' ? 'Make Writer' : 'Make Reader';
}

/** A link as a quick pick line. */
export function linkLabel(l: Link): string {
  const uses = l.maxUses === undefined ? `${l.uses} uses` : `${l.uses}/${l.maxUses} uses`;
  return `${l.role} link ${l.id} (${l.revoked ? 'revoked' : uses})`;
}
