// Declarations only (include/CLoomIO.h); SwiftPM needs a source file for a C target.
