package im.starling.android;

import android.content.Context;
import android.security.keystore.KeyGenParameterSpec;
import android.security.keystore.KeyProperties;
import android.util.Log;

import java.io.File;
import java.io.FileOutputStream;
import java.nio.file.Files;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.util.Arrays;

import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * The key that seals Starling's secrets file (passwords, push and OMEMO store secrets):
 * 32 random bytes, stored only wrapped by a non-exportable AES key in the Android Keystore,
 * handed to the core once per process (starling_core::secrets::Secrets::sealed). Where the
 * Keystore cannot be used, nothing is handed over and the secrets stay, unsealed, in the
 * app's private storage.
 */
final class SecretKeeper {
    private static final String TAG = "starling";
    private static final String ALIAS = "starling-secrets";
    /** In the app's files directory: the 12-byte IV, then the wrapped key. */
    private static final String WRAPPED = "secrets.key";
    private static boolean installed;

    private SecretKeeper() {}

    /** Gives the core its key; before anything opens the profile. */
    static synchronized void install(Context context) {
        if (installed) {
            return;
        }
        installed = true;
        byte[] key = null;
        try {
            key = dataKey(context);
            nativeSetKey(key);
        } catch (Exception e) {
            Log.w(TAG, "Android Keystore unavailable; secrets stay unsealed in private storage", e);
        } finally {
            if (key != null) {
                Arrays.fill(key, (byte) 0);
            }
        }
    }

    private static native void nativeSetKey(byte[] key);

    private static byte[] dataKey(Context context) throws Exception {
        KeyStore store = KeyStore.getInstance("AndroidKeyStore");
        store.load(null);
        if (!store.containsAlias(ALIAS)) {
            KeyGenerator generator =
                    KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore");
            generator.init(new KeyGenParameterSpec.Builder(
                            ALIAS, KeyProperties.PURPOSE_ENCRYPT | KeyProperties.PURPOSE_DECRYPT)
                    .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                    .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                    .setKeySize(256)
                    .build());
            generator.generateKey();
        }
        SecretKey wrapping = (SecretKey) store.getKey(ALIAS, null);
        File file = new File(context.getFilesDir(), WRAPPED);
        Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
        if (file.exists()) {
            byte[] blob = Files.readAllBytes(file.toPath());
            cipher.init(Cipher.DECRYPT_MODE, wrapping, new GCMParameterSpec(128, blob, 0, 12));
            return cipher.doFinal(blob, 12, blob.length - 12);
        }
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        cipher.init(Cipher.ENCRYPT_MODE, wrapping);
        byte[] iv = cipher.getIV();
        byte[] wrapped = cipher.doFinal(key);
        File tmp = new File(context.getFilesDir(), WRAPPED + ".tmp");
        try (FileOutputStream out = new FileOutputStream(tmp)) {
            out.write(iv);
            out.write(wrapped);
            out.getFD().sync();
        }
        if (!tmp.renameTo(file)) {
            throw new java.io.IOException("cannot store " + file);
        }
        return key;
    }
}
