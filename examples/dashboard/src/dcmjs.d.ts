// dcmjs ships no TypeScript types; its use is confined to src/viewer/seg.ts.
declare module 'dcmjs';
