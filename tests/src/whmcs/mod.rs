//! A fake WHMCS installation on localhost.
