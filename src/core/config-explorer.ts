// cosmiconfig in a module of its own, which settings.ts imports only when a config file exists. A
// static import: the bundle (scripts/build.mjs) then hands over cosmiconfig's named export, where
// an import() of the CommonJS package itself would give only its default.
export { cosmiconfig, defaultLoaders } from 'cosmiconfig';
