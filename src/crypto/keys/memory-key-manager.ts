// Keys that live only as long as the process: tests, dev mode and ephemeral agents.
import type { KeyType } from '../../core/authority.ts';
import type { KeyManager, ManagedKey } from '../key-manager.ts';
import { assertKeyRef } from './key-ref.ts';
import { generatePrivateKey } from './key-types.ts';
import { localKey } from './local-key.ts';

export class MemoryKeyManager implements KeyManager {
  readonly #keys = new Map<string, ManagedKey>();

  async generate(ref: string, type: KeyType): Promise<ManagedKey> {
    assertKeyRef(ref);
    const key = localKey(ref, await generatePrivateKey(type));
    this.#keys.set(ref, key);
    return key;
  }

  async get(ref: string): Promise<ManagedKey | null> {
    return this.#keys.get(assertKeyRef(ref)) ?? null;
  }

  async delete(ref: string): Promise<void> {
    this.#keys.delete(assertKeyRef(ref));
  }

  locate(ref: string): string {
    return `process memory (key_manager: memory; ${assertKeyRef(ref)} is gone with the process)`;
  }

  async list(): Promise<string[]> {
    return [...this.#keys.keys()].sort();
  }
}
