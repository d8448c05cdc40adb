"""Model-free maths that training and evaluation share: IoU, Hungarian soft-F1, grounding AP, lexical scores, and
answer extraction after ``</think>`` with the thinking penalties."""
