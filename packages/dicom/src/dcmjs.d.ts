// dcmjs ships no TypeScript types (and @types/dcmjs does not exist). Its use is confined to dicom-*.ts / seg-*.ts,
// which give it typed wrappers.
declare module 'dcmjs';
