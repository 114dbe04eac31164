//! SKELETON — to be implemented. AEAD_AES_256_GCM resources.
