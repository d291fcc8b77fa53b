/** This package's version (package.json's), written into the bundle by the build (vite.config.ts). */
declare const __FMNIST_VERSION__: string;

export const VERSION: string = __FMNIST_VERSION__;
