// The release version, alone in its module: `tessera --version` loads nothing else.
export const VERSION = '0.1.0';
