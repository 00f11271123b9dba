//! WHMCS: the API client and the PHP serialization its array parameters need.
