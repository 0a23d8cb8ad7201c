// Loaded once before every test file (.mocharc.json): @peculiar/x509 needs reflect-metadata.
import 'reflect-metadata';
