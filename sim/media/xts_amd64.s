//go:build amd64 && !purego

#include "textflag.h"

// XTS-AES-256 block loops with AES-NI (IEEE Std 1619-2007 section 5,
// FIPS 197). For each of the n 16-byte
// blocks: dst = AES-256(src ^ tw) ^ tw, with tw the block's tweak,
// precomputed by the caller. Blocks go eight at a time, so that eight
// independent AES computations fill the AES unit's pipeline, then one at a
// time. dst may equal src. rk holds the 15 round keys; for decryption, the
// Equivalent Inverse Cipher's (FIPS 197 section 5.3.5).

// func encryptBlocksAESNI(rk *[240]byte, dst, src, tw *byte, n int)
//
// Requires: AES, SSE2
TEXT ·encryptBlocksAESNI(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ tw+24(FP), DX
	MOVQ n+32(FP), CX

encryptBlocksAESNI_8:
	CMPQ CX, $8
	JB   encryptBlocksAESNI_1
	// x = src ^ tweak ^ round key 0, eight blocks at once
	MOVOU (AX), X8
	MOVOU 0(SI), X0
	MOVOU 0(DX), X9
	PXOR  X9, X0
	PXOR  X8, X0
	MOVOU 16(SI), X1
	MOVOU 16(DX), X9
	PXOR  X9, X1
	PXOR  X8, X1
	MOVOU 32(SI), X2
	MOVOU 32(DX), X9
	PXOR  X9, X2
	PXOR  X8, X2
	MOVOU 48(SI), X3
	MOVOU 48(DX), X9
	PXOR  X9, X3
	PXOR  X8, X3
	MOVOU 64(SI), X4
	MOVOU 64(DX), X9
	PXOR  X9, X4
	PXOR  X8, X4
	MOVOU 80(SI), X5
	MOVOU 80(DX), X9
	PXOR  X9, X5
	PXOR  X8, X5
	MOVOU 96(SI), X6
	MOVOU 96(DX), X9
	PXOR  X9, X6
	PXOR  X8, X6
	MOVOU 112(SI), X7
	MOVOU 112(DX), X9
	PXOR  X9, X7
	PXOR  X8, X7
	LEAQ 16(AX), BX
	MOVQ $13, R8
encryptBlocksAESNI_8_round:
	MOVOU (BX), X8
	AESENC X8, X0
	AESENC X8, X1
	AESENC X8, X2
	AESENC X8, X3
	AESENC X8, X4
	AESENC X8, X5
	AESENC X8, X6
	AESENC X8, X7
	ADDQ $16, BX
	DECQ R8
	JNZ  encryptBlocksAESNI_8_round
	MOVOU (BX), X8
	AESENCLAST X8, X0
	AESENCLAST X8, X1
	AESENCLAST X8, X2
	AESENCLAST X8, X3
	AESENCLAST X8, X4
	AESENCLAST X8, X5
	AESENCLAST X8, X6
	AESENCLAST X8, X7
	// dst = x ^ tweak
	MOVOU 0(DX), X9
	PXOR  X9, X0
	MOVOU X0, 0(DI)
	MOVOU 16(DX), X9
	PXOR  X9, X1
	MOVOU X1, 16(DI)
	MOVOU 32(DX), X9
	PXOR  X9, X2
	MOVOU X2, 32(DI)
	MOVOU 48(DX), X9
	PXOR  X9, X3
	MOVOU X3, 48(DI)
	MOVOU 64(DX), X9
	PXOR  X9, X4
	MOVOU X4, 64(DI)
	MOVOU 80(DX), X9
	PXOR  X9, X5
	MOVOU X5, 80(DI)
	MOVOU 96(DX), X9
	PXOR  X9, X6
	MOVOU X6, 96(DI)
	MOVOU 112(DX), X9
	PXOR  X9, X7
	MOVOU X7, 112(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	ADDQ $128, DX
	SUBQ $8, CX
	JMP  encryptBlocksAESNI_8

encryptBlocksAESNI_1:
	TESTQ CX, CX
	JZ    encryptBlocksAESNI_done
	MOVOU (AX), X8
	MOVOU (SI), X0
	MOVOU (DX), X9
	PXOR  X9, X0
	PXOR  X8, X0
	LEAQ 16(AX), BX
	MOVQ $13, R8
encryptBlocksAESNI_1_round:
	MOVOU (BX), X8
	AESENC X8, X0
	ADDQ $16, BX
	DECQ R8
	JNZ  encryptBlocksAESNI_1_round
	MOVOU (BX), X8
	AESENCLAST X8, X0
	PXOR  X9, X0
	MOVOU X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $16, DX
	DECQ CX
	JMP  encryptBlocksAESNI_1

encryptBlocksAESNI_done:
	RET

// func decryptBlocksAESNI(rk *[240]byte, dst, src, tw *byte, n int)
//
// Requires: AES, SSE2
TEXT ·decryptBlocksAESNI(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ tw+24(FP), DX
	MOVQ n+32(FP), CX

decryptBlocksAESNI_8:
	CMPQ CX, $8
	JB   decryptBlocksAESNI_1
	// x = src ^ tweak ^ round key 0, eight blocks at once
	MOVOU (AX), X8
	MOVOU 0(SI), X0
	MOVOU 0(DX), X9
	PXOR  X9, X0
	PXOR  X8, X0
	MOVOU 16(SI), X1
	MOVOU 16(DX), X9
	PXOR  X9, X1
	PXOR  X8, X1
	MOVOU 32(SI), X2
	MOVOU 32(DX), X9
	PXOR  X9, X2
	PXOR  X8, X2
	MOVOU 48(SI), X3
	MOVOU 48(DX), X9
	PXOR  X9, X3
	PXOR  X8, X3
	MOVOU 64(SI), X4
	MOVOU 64(DX), X9
	PXOR  X9, X4
	PXOR  X8, X4
	MOVOU 80(SI), X5
	MOVOU 80(DX), X9
	PXOR  X9, X5
	PXOR  X8, X5
	MOVOU 96(SI), X6
	MOVOU 96(DX), X9
	PXOR  X9, X6
	PXOR  X8, X6
	MOVOU 112(SI), X7
	MOVOU 112(DX), X9
	PXOR  X9, X7
	PXOR  X8, X7
	LEAQ 16(AX), BX
	MOVQ $13, R8
decryptBlocksAESNI_8_round:
	MOVOU (BX), X8
	AESDEC X8, X0
	AESDEC X8, X1
	AESDEC X8, X2
	AESDEC X8, X3
	AESDEC X8, X4
	AESDEC X8, X5
	AESDEC X8, X6
	AESDEC X8, X7
	ADDQ $16, BX
	DECQ R8
	JNZ  decryptBlocksAESNI_8_round
	MOVOU (BX), X8
	AESDECLAST X8, X0
	AESDECLAST X8, X1
	AESDECLAST X8, X2
	AESDECLAST X8, X3
	AESDECLAST X8, X4
	AESDECLAST X8, X5
	AESDECLAST X8, X6
	AESDECLAST X8, X7
	// dst = x ^ tweak
	MOVOU 0(DX), X9
	PXOR  X9, X0
	MOVOU X0, 0(DI)
	MOVOU 16(DX), X9
	PXOR  X9, X1
	MOVOU X1, 16(DI)
	MOVOU 32(DX), X9
	PXOR  X9, X2
	MOVOU X2, 32(DI)
	MOVOU 48(DX), X9
	PXOR  X9, X3
	MOVOU X3, 48(DI)
	MOVOU 64(DX), X9
	PXOR  X9, X4
	MOVOU X4, 64(DI)
	MOVOU 80(DX), X9
	PXOR  X9, X5
	MOVOU X5, 80(DI)
	MOVOU 96(DX), X9
	PXOR  X9, X6
	MOVOU X6, 96(DI)
	MOVOU 112(DX), X9
	PXOR  X9, X7
	MOVOU X7, 112(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	ADDQ $128, DX
	SUBQ $8, CX
	JMP  decryptBlocksAESNI_8

decryptBlocksAESNI_1:
	TESTQ CX, CX
	JZ    decryptBlocksAESNI_done
	MOVOU (AX), X8
	MOVOU (SI), X0
	MOVOU (DX), X9
	PXOR  X9, X0
	PXOR  X8, X0
	LEAQ 16(AX), BX
	MOVQ $13, R8
decryptBlocksAESNI_1_round:
	MOVOU (BX), X8
	AESDEC X8, X0
	ADDQ $16, BX
	DECQ R8
	JNZ  decryptBlocksAESNI_1_round
	MOVOU (BX), X8
	AESDECLAST X8, X0
	PXOR  X9, X0
	MOVOU X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $16, DX
	DECQ CX
	JMP  decryptBlocksAESNI_1

decryptBlocksAESNI_done:
	RET
