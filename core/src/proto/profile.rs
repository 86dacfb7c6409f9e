//! XEP-0084, XEP-0172, XEP-0292 and the vCard-temp fallback: profiles (in progress).
