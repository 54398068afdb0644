// Package packaging holds the Debian packages' build (build-deb, nfpm/,
// deb/, etc/) and its tests: the packages are built, their file lists
// compared with testdata/, checked with lintian, and installed, reinstalled,
// removed and purged on the test machine (as root). README.md describes the
// packages and the rules their maintainer scripts follow.
package packaging
